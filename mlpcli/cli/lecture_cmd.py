"""`mlpcli inspect`, `mlpcli gradcheck`, `mlpcli trace`: the lecture's math, made visible."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpcli.cli.render import architecture_table, console, print_json, user_errors

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _fmt(values: Any, digits: int = 8) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_fmt(v, digits) for v in values) + "]"
    return f"{values:.{digits}f}".rstrip("0").rstrip(".") if values != int(values) else f"{int(values)}"


def _resolve(path: Path) -> Path:
    """A run folder means its checkpoint; a shipped config's bare name (toy, mnist) its file."""
    from mlpcli.config import find_config
    from mlpcli.runs.folder import checkpoint_in

    return checkpoint_in(path) if path.is_dir() else find_config(path)


def inspect(
    path: Annotated[
        Path,
        typer.Argument(help="An experiment config, a network file (toy), a checkpoint or a run folder."),
    ],
    json_out: JsonOpt = False,
    weights: Annotated[
        bool, typer.Option("--weights", help="Draw what the first layer learned (28x28 templates), or the matrices.")
    ] = False,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="With --weights: how many units.")] = 12,
    png: Annotated[
        Path | None, typer.Option("--png", help="With --weights: also write the templates as a PNG.")
    ] = None,
) -> None:
    """Architecture and parameter counts (as the lecture counts them); checkpoints add metadata and weights."""
    from mlpcli.config import load_config
    from mlpcli.files import checkpoint
    from mlpcli.lecture.network_file import is_network_file, load_network
    from mlpcli.lecture.trace import architecture, weight_stats

    path = _resolve(path)
    if weights or png is not None:
        _inspect_weights(path, count, png, json_out)
        return
    with user_errors(json_out):
        doc: dict[str, Any] = {"path": str(path)}
        if path.suffix == ".npz":
            ckpt = checkpoint.load(path)
            doc["kind"] = "checkpoint"
            doc["architecture"] = architecture(ckpt.layer_sizes, ckpt.meta["activation"], ckpt.meta["output"])
            meta = {k: v for k, v in ckpt.meta.items() if k not in ("config", "history", "resume")}
            doc.update(
                meta=meta,
                normalization={"mean": ckpt.norm_mean.tolist(), "std": ckpt.norm_std.tolist()},
                weights=weight_stats(ckpt),
                optimizer_state=sorted(ckpt.opt_state),
            )
        elif is_network_file(path):
            spec = load_network(path)
            doc["kind"] = "network"
            doc["architecture"] = architecture(spec.layer_sizes(), spec.activation, spec.output)
        else:
            cfg = load_config(path)
            doc["kind"] = "config"
            doc["architecture"] = architecture(cfg.layer_sizes(), cfg.model.activation, cfg.model.output)
    if json_out:
        print_json(doc)
        return
    console.print(f"[bold]{path}[/] ({doc['kind']})")
    console.print(architecture_table(doc["architecture"]))
    if doc["kind"] != "checkpoint":
        return
    from rich.table import Table

    meta = doc["meta"]
    console.print(
        f"dataset {meta.get('dataset')}, epoch {meta.get('epoch')}, created {meta.get('created')}, "
        f"mlpcli {meta.get('mlpcli_version')}"
    )
    metrics = meta.get("metrics") or {}
    if metrics:
        console.print(
            "metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
        )
    mean, std = doc["normalization"]["mean"], doc["normalization"]["std"]
    if isinstance(mean, list):
        console.print(
            f"normalization: per pixel, mean in [{min(mean):.3f}, {max(mean):.3f}], "
            f"std in [{min(std):.3f}, {max(std):.3f}]"
        )
    else:
        console.print(f"normalization: (pixels/255 - {mean:.4f}) / {std:.4f}")
    table = Table(title="weights", title_justify="left", show_edge=False)
    for col in ("array", "shape (lecture form)", "mean", "std", "min", "max", "|w| < 1e-3"):
        table.add_column(col, justify="left" if col in ("array", "shape (lecture form)") else "right")
    for w in doc["weights"]:
        table.add_row(
            w["name"],
            " x ".join(map(str, reversed(w["shape"]))),  # neurons x inputs, as the architecture table says
            f"{w['mean']:.4f}",
            f"{w['std']:.4f}",
            f"{w['min']:.4f}",
            f"{w['max']:.4f}",
            f"{w['near_zero']:.1%}",
        )
    console.print(table)


def gradcheck(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Check this experiment's network.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare backpropagation with central differences; exit 1 if any relative error exceeds 1e-5."""
    from rich.table import Table

    from mlpcli.config import load_config
    from mlpcli.errors import MlpcliError
    from mlpcli.lecture.trace import GRADCHECK_TOLERANCE, gradcheck_all, gradcheck_config

    with user_errors(json_out):
        if config is not None:
            cfg = load_config(config)
            rows = [
                {
                    "activation": cfg.model.activation,
                    "output": cfg.model.output,
                    "loss": cfg.loss,
                    "errors": gradcheck_config(cfg),
                }
            ]
        else:
            rows = gradcheck_all()
        worst = max(e for r in rows for e in r["errors"].values())
        passed = worst <= GRADCHECK_TOLERANCE
        if json_out:
            print_json({"tolerance": GRADCHECK_TOLERANCE, "passed": passed, "max_error": worst, "checks": rows})
        else:
            names = list(rows[0]["errors"])
            table = Table(
                title="max relative error of backprop vs central differences", title_justify="left", show_edge=False
            )
            for col in ("activation", "output + loss", *names):
                table.add_column(col, justify="left" if col in ("activation", "output + loss") else "right")
            for r in rows:
                cells = [f"[{'green' if v <= GRADCHECK_TOLERANCE else 'red'}]{v:.1e}[/]" for v in r["errors"].values()]
                table.add_row(r["activation"], f"{r['output']} + {r['loss']}", *cells)
            console.print(table)
            console.print(
                f"{'[green]passed' if passed else '[red]FAILED'}[/]: worst {worst:.2e} "
                f"(tolerance {GRADCHECK_TOLERANCE:g})"
            )
        if not passed:
            raise MlpcliError(f"gradient check failed: relative error {worst:.2e} > {GRADCHECK_TOLERANCE:g}")


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated numbers like 1,-1 (got {text!r})", param_hint=option
        ) from None


def trace(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="A network file (toy), or a small checkpoint such as a playground model."),
    ] = None,
    input_: Annotated[str | None, typer.Option("--input", "-x", help="Input vector, e.g. 1,-1.")] = None,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Target vector: adds deltas, gradients, one SGD step.")
    ] = None,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate of the SGD step.")] = 0.5,
    graph: Annotated[bool, typer.Option("--graph", help="The computational graph f(x,y,z) = (x+y)z instead.")] = False,
    values: Annotated[str, typer.Option("--values", help="x,y,z for --graph.")] = "-2,5,-4",
    json_out: JsonOpt = False,
) -> None:
    """A small network's forward pass, deltas, gradients and one SGD step, in numbers (the lecture's formulas)."""
    from mlpcli.errors import ConfigError
    from mlpcli.lecture.network_file import load_network, network_of_checkpoint
    from mlpcli.lecture.trace import trace as trace_network
    from mlpcli.lecture.trace import trace_graph

    if graph:
        xyz = _numbers(values, "--values")
        if len(xyz) != 3:
            raise typer.BadParameter("needs three numbers x,y,z", param_hint="--values")
        doc = trace_graph(*xyz)
        if json_out:
            print_json(doc)
            return
        console.print(f"f(x, y, z) = (x + y) z at x = {_fmt(doc['x'])}, y = {_fmt(doc['y'])}, z = {_fmt(doc['z'])}")
        console.print(f"forward:  q = x + y = {_fmt(doc['q'])};  f = q z = {_fmt(doc['f'])}")
        console.print(f"backward: df/df = 1;  df/dz = q = {_fmt(doc['df_dz'])};  df/dq = z = {_fmt(doc['df_dq'])}")
        console.print(
            f"          df/dx = df/dq * dq/dx = {_fmt(doc['df_dq'])} * 1 = {_fmt(doc['df_dx'])};  "
            f"df/dy = df/dq * dq/dy = {_fmt(doc['df_dq'])} * 1 = {_fmt(doc['df_dy'])}"
        )
        return
    if config is None or input_ is None:
        raise typer.BadParameter("needs --config and --input (or --graph)", param_hint="--config/--input")
    x = _numbers(input_, "--input")
    t = _numbers(target, "--target") if target is not None else None
    with user_errors(json_out):
        spec = network_of_checkpoint(_resolve(config)) if _resolve(config).suffix == ".npz" else load_network(config)
        try:
            doc = trace_network(spec, x, t, lr)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if json_out:
        print_json(doc)
        return
    _render_trace(doc)


def _render_trace(doc: dict[str, Any]) -> None:
    console.print(f"[bold]forward[/]: x = {_fmt(doc['input'])}")
    for layer in doc["layers"]:
        l, f = layer["layer"], layer["activation"]
        console.print(
            f" layer {l}: z{l} = W{l} a{l - 1} + b{l} = {_fmt(layer['W'])} {_fmt(layer['input'])} + "
            f"{_fmt(layer['b'])} = {_fmt(layer['z'])}"
        )
        console.print(f"          a{l} = {f}(z{l}) = {_fmt(layer['a'])}")
    console.print(f"[bold]output[/] f(x) = {_fmt(doc['output'])}")
    if "target" not in doc:
        return
    console.print(f"[bold]backward[/]: target t = {_fmt(doc['target'])}, {doc['loss_name']} E = {_fmt(doc['loss'])}")
    layers = doc["layers"]
    last = layers[-1]["layer"]
    for layer in reversed(layers):
        l = layer["layer"]
        if l == last and doc["loss_name"] == "mse" and layer["activation"] == "sigmoid":
            rule = "o (1 - o)(o - t)"
        elif l == last:
            rule = "dE/dz"
        else:
            rule = (
                f"a{l} (1 - a{l}) sum_j delta{l + 1}_j W{l + 1}_ji"
                if layer["activation"] == "sigmoid"
                else f"f'(z{l}) W{l + 1}^T delta{l + 1}"
            )
        console.print(f" delta{l} = {rule} = {_fmt(layer['delta'])}")
        console.print(
            f"   dE/dW{l} = delta{l} a{l - 1}^T = {_fmt(layer['dE_dW'])};  dE/db{l} = delta{l} = {_fmt(layer['dE_db'])}"
        )
    console.print(f"[bold]one SGD step[/] (lr {_fmt(doc['lr'])}): W <- W - lr dE/dW, b <- b - lr dE/db")
    for layer in layers:
        l = layer["layer"]
        console.print(f" W{l} = {_fmt(layer['W_new'])};  b{l} = {_fmt(layer['b_new'])}")


def _inspect_weights(path: Path, count: int, png: Path | None, json_out: bool) -> None:
    """What the weights learned: first-layer templates of a checkpoint, or the matrices of a small network."""
    from mlpcli.errors import MlpcliError
    from mlpcli.files import checkpoint
    from mlpcli.lecture.network_file import is_network_file, load_network
    from mlpcli.lecture.trace import network_model, weight_templates

    with user_errors(json_out):
        if path.suffix == ".npz":
            ckpt = checkpoint.load(path)
            params, classes = ckpt.params, ckpt.classes
        elif is_network_file(path):
            params, classes = network_model(load_network(path)).params, []
        else:
            raise MlpcliError(f"{path}: an experiment config has no weights; give a checkpoint or a network file")
        found = weight_templates(params, count)
        if png is not None:
            if found["kind"] == "matrices":
                raise MlpcliError(f"{path}: its inputs are not a square image, so there are no templates to draw")
            from mlpcli.runs.plots import write_templates_png

            write_templates_png(found["units"], png, title=f"{path.name}: first-layer weights")
    if json_out:
        if found["kind"] == "matrices":
            print_json({"kind": "matrices", "W": {k: v.T.tolist() for k, v in params.items() if k.startswith("W")}})
        else:
            print_json({**found, "units": [{**u, "template": u["template"].tolist()} for u in found["units"]]})
        return
    if found["kind"] == "matrices":
        for name in sorted(k for k in params if k.startswith("W")):
            console.print(_matrix_table(name, params[name].T))  # the lecture's W x form: row j = neuron j
        return
    from mlpcli.cli.render import digit_grid

    what = "class templates" if found["kind"] == "classes" else "hidden units, strongest first"
    console.print(f"[bold]{path}[/]: first-layer weights ({what}); bright = positive, dark = negative")
    items = []
    for u in found["units"]:
        t = u["template"]
        image = 0.5 + 0.5 * t / max(float(abs(t).max()), 1e-12)
        label = classes[u["unit"]] if found["kind"] == "classes" and classes else f"unit {u['unit']}"
        items.append((image, f"{label}  {u['score']:.2f}"))
    digit_grid(items, per_row=4)
    if png is not None:
        console.print(f"wrote {png}")


def _matrix_table(name: str, W: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"{name} (neurons x inputs)", title_justify="left", show_edge=False)
    table.add_column("")
    for i in range(W.shape[1]):
        table.add_column(f"in {i + 1}", justify="right")
    peak = max(float(abs(W).max()), 1e-12)
    for j, row in enumerate(W):
        cells = []
        for v in row:
            shade = int(90 + 165 * abs(v) / peak)
            color = f"rgb(80,{shade},80)" if v >= 0 else f"rgb({shade},80,80)"
            cells.append(f"[{color}]{_fmt(float(v), 4)}[/]")
        table.add_row(f"neuron {j + 1}", *cells)
    return table
