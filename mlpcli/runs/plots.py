"""Learning curves as PNG, with matplotlib when the optional plot extra is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpcli.files.atomic import atomic_open
from mlpcli.errors import MlpcliError, MissingExtra


def _save(plt: Any, fig: Any, out: Path) -> None:
    """Write the figure as PNG atomically; a folder that is missing or not writable is one line."""
    try:
        with atomic_open(out, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
    except OSError as exc:
        raise MlpcliError(f"cannot write {out}: {exc.strerror or exc} (does the folder {out.parent} exist?)") from None
    finally:
        plt.close(fig)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra("plotting needs matplotlib", "plot") from None
    return plt


def write_curves_png(rows: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Loss and accuracy per epoch, train and validation, side by side."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        for split in ("train", "val"):
            values = [r.get(f"{split}_{key}") for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save(plt, fig, out)
    return out


def write_compare_png(runs: list[dict[str, Any]], out: Path) -> Path:
    """Validation (else training) loss and accuracy of several runs, overlaid."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for run in runs:
        for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
            split = "val" if any(v is not None for v in run["curves"][f"val_{key}"]) else "train"
            values = run["curves"][f"{split}_{key}"]
            ax.plot(range(1, len(values) + 1), values, marker=".", label=f"{Path(run['folder']).name} ({split})")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    fig.tight_layout()
    _save(plt, fig, out)
    return out


def write_templates_png(units: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Weight templates in a grid, diverging colors (blue negative, white zero, red positive), each unit on its
    own scale; a colour bar says so."""
    plt = _pyplot()
    cols = min(len(units), 8)
    rows = -(-len(units) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 1.2, 1.7 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, u in zip(axes.ravel(), units):
        t = u["template"]
        peak = float(abs(t).max()) or 1.0
        ax.imshow(t, cmap="RdBu_r", vmin=-peak, vmax=peak)
        ax.set_title(f"unit {u['unit']}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    scale = plt.cm.ScalarMappable(cmap="RdBu_r", norm=plt.Normalize(-1.0, 1.0))
    legend = fig.colorbar(scale, ax=axes.ravel().tolist(), shrink=0.8, ticks=[-1.0, 0.0, 1.0])
    legend.ax.set_yticklabels(["-max |w|", "0", "+max |w|"], fontsize=7)
    legend.set_label("weight into the unit (each unit: its own max |w|)", fontsize=7)
    _save(plt, fig, out)
    return out


def write_boundary_png(
    xs: Any, ys: Any, probabilities: Any, train: tuple[Any, Any], test: tuple[Any, Any], out: Path, title: str = ""
) -> Path:
    """The decision boundary as a heat map (the most probable class, shaded by its probability) under the
    training points (filled) and test points (outlined); a legend names the classes."""
    plt = _pyplot()
    import numpy as np

    k = probabilities.shape[-1]
    colors = plt.get_cmap("tab10")(np.arange(k))[:, :3]
    winner, sure = probabilities.argmax(axis=-1), probabilities.max(axis=-1)
    image = np.clip(colors[winner] * sure[..., None] + (1 - sure[..., None]), 0, 1)  # pale where unsure
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(image, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), aspect="auto", alpha=0.6)
    for c in range(k):
        for (xy, y), filled, label in ((train, True, "train"), (test, False, "test")):
            pts = xy[y == c]
            ax.scatter(pts[:, 0], pts[:, 1], s=14, label=f"class {c} ({label})",
                       c=[colors[c]] if filled else "none", edgecolors=[colors[c]], linewidths=1)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right", ncols=2)
    fig.tight_layout()
    _save(plt, fig, out)
    return out
