"""`mlpcli data ...`: fetch, verify, where, import, show."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from mlpcli.cli import complete
from mlpcli.cli.render import console, err_console, print_json, user_errors

app = typer.Typer(help="Fetch, verify, locate, import and look at datasets.", no_args_is_help=True)

DatasetArg = Annotated[str, typer.Argument(help="mnist or fashion-mnist.", autocompletion=complete.datasets)]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never touch the network (also MLPCLI_OFFLINE=1).")]


def _spec(name: str) -> Any:
    from mlpcli.data.sources import DATASETS
    from mlpcli.errors import DataError

    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


@contextmanager
def download_progress(enabled: bool = True) -> Iterator[list[Any]]:
    """Callbacks that render downloads as rich progress bars (bytes, speed) on stderr."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from mlpcli.events import DownloadEnd, DownloadProgress, DownloadStart

    def on_failure(event: Any) -> None:
        if isinstance(event, DownloadEnd) and not event.ok:
            err_console.print(f"[yellow]{event.url}: {event.reason}; trying the next mirror[/]")

    if not enabled:
        yield [on_failure]  # no bars, but a failed mirror is still reported (once)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, DownloadStart):
            if not tasks:
                progress.start()  # only once something is downloaded: no empty line otherwise
            if event.file in tasks:
                progress.remove_task(tasks[event.file])
            tasks[event.file] = progress.add_task(event.file, total=event.total)
        elif isinstance(event, DownloadProgress) and event.file in tasks:
            progress.update(tasks[event.file], completed=event.received)
        else:
            on_failure(event)

    try:
        yield [on_event]
    finally:
        if tasks:
            progress.stop()


@app.command("fetch")
def fetch(
    dataset: DatasetArg = "mnist",
    offline: OfflineOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the file paths as JSON.")] = False,
) -> None:
    """Download a dataset into the cache (MLPCLI_MIRROR first), verifying every file's SHA-256."""
    from mlpcli.data.download import fetch as fetch_files

    with user_errors(json_out):
        spec = _spec(dataset)
        with download_progress(not json_out) as callbacks:
            paths = fetch_files(spec, offline=offline, callbacks=callbacks)
        if json_out:
            print_json({"dataset": spec.name, "files": {k: str(v) for k, v in paths.items()}})
            return
        for path in paths.values():
            console.print(f"[green]verified[/] {path}")


def _status_rows(name: str) -> list[dict[str, Any]]:
    from mlpcli.data.cache import partials
    from mlpcli.data.download import status

    spec = _spec(name)
    rows = [
        {
            "dataset": name,
            "file": s.dfile.name,
            "state": s.state,
            "path": str(s.path) if s.path else None,
            "bytes": s.size,
        }
        for s in status(spec)
    ]
    for part in partials(spec):  # left by a download that was killed; the next fetch removes it
        rows.append(
            {"dataset": name, "file": part.name, "state": "partial", "path": str(part), "bytes": part.stat().st_size}
        )
    return rows


def _size(n: int) -> str:
    """A file size a person reads: bytes, kB or MB."""
    if not n:
        return ""
    return f"{n:,} B" if n < 1000 else f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def _status_table(rows: list[dict[str, Any]], title: str) -> None:
    """The files' table (short names, never cut), then each folder in full on its own line: a path is what a
    user copies, so no column squeezes it."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("dataset", "file", "state", "size"):
        table.add_column(col, no_wrap=True, overflow="fold")
    colors = {"verified": "green", "corrupt": "red", "missing": "yellow", "partial": "yellow"}
    folders: dict[str, list[str]] = {}
    for r in rows:
        size = _size(r["bytes"])
        state = f"[{colors[r['state']]}]{r['state']}[/]"
        table.add_row(r["dataset"], r["file"], state, size)
        if r["path"]:
            folders.setdefault(str(Path(r["path"]).parent), []).append(r["dataset"])
    console.print(table)
    for folder, names in folders.items():
        console.print(f"{', '.join(dict.fromkeys(names))} files in: {folder}", overflow="fold")


@app.command("verify")
def verify(
    dataset: Annotated[str | None, typer.Argument(help="mnist or fashion-mnist (default: both).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-hash what the cache holds and report each file; exit 1 if any is corrupt."""
    from mlpcli.data.sources import DATASETS
    from mlpcli.errors import DataError

    with user_errors(json_out):
        names = [dataset] if dataset else list(DATASETS)
        rows = [r for name in names for r in _status_rows(name)]
        if json_out:
            print_json(rows)
        else:
            _status_table(rows, "dataset files (sha256 checked)")
        corrupt = [r for r in rows if r["state"] == "corrupt"]
        if corrupt:
            raise DataError(
                f"{len(corrupt)} file(s) do not match their checksums; run 'mlpcli data fetch' to replace them"
            )
        if dataset and any(r["state"] == "missing" for r in rows):
            raise DataError(f"{dataset} is not fully in the cache; run 'mlpcli data fetch {dataset}'")


@app.command("where")
def where(json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Show the cache folder and, for each dataset file, its path, size and state."""
    from mlpcli.data.cache import cache_root
    from mlpcli.data.download import mirrors_for
    from mlpcli.data.sources import DATASETS, SAMPLE_DIR

    with user_errors(json_out):
        rows = [r for name in DATASETS for r in _status_rows(name)]
        if json_out:
            print_json({"cache": str(cache_root()), "sample": str(SAMPLE_DIR), "files": rows})
            return
        console.print(f"cache folder: [bold]{cache_root()}[/] (set MLPCLI_DATA_DIR to move it)")
        console.print(f"shipped sample (mnist-sample): {SAMPLE_DIR}")
        console.print(f"mnist mirrors, in order (MLPCLI_MIRROR's first): {', '.join(mirrors_for(DATASETS['mnist']))}")
        _status_table(rows, "dataset files")


@app.command("import")
def import_(
    dataset: DatasetArg,
    folder: Annotated[Path, typer.Argument(help="A folder holding the four IDX files (gz or not).")],
) -> None:
    """Verify the four files of a dataset in FOLDER against the pinned checksums, then copy them into the cache."""
    from mlpcli.data.cache import dataset_dir, import_file, matches
    from mlpcli.data.load import folder_files
    from mlpcli.errors import DataError

    with user_errors():
        spec = _spec(dataset)
        found = folder_files(folder)
        bad = [str(found[f.role]) for f in spec.files if not matches(found[f.role], f)]
        if bad:
            raise DataError(
                f"not the official {spec.name} files (checksum mismatch): {', '.join(bad)}; nothing was imported"
            )
        for dfile in spec.files:
            dest = import_file(found[dfile.role], dfile, dataset_dir(spec))
            console.print(f"[green]imported[/] {found[dfile.role]} -> {dest}")


@app.command("show")
def show(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Experiment YAML file.", autocompletion=complete.configs)
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key (repeatable).")] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=60, help="How many digits.")] = 8,
    seed: Annotated[int | None, typer.Option("--seed", help="Override seed (another draw).")] = None,
    offline: OfflineOpt = False,
) -> None:
    """Draw training digits as the config's training sees them: each original beside its augmented version."""
    from mlpcli.cli.render import digit_grid
    from mlpcli.config import load_config
    from mlpcli.training.preview import preview

    overrides = list(set_ or []) + ([f"seed={seed}"] if seed is not None else [])
    with user_errors():
        cfg = load_config(config, overrides)
        with download_progress() as callbacks:
            sample = preview(cfg, count, offline=offline, callbacks=callbacks)
    a = cfg.augment
    on = {k: v for k, v in a.model_dump().items() if v}
    console.print(
        f"[bold]{cfg.name}[/]: {sample.dataset}, augment "
        + (", ".join(f"{k} {v:g}" for k, v in on.items()) if on else "off (every augment key is 0)")
    )
    items = []
    for image, augmented, label in zip(sample.originals, sample.augmented, sample.labels):
        items.append((image / 255.0, f"{sample.classes[label]}"))
        items.append((augmented / 255.0, f"{sample.classes[label]} augmented"))
    digit_grid(items, per_row=6)
