"""`mlpcli eval` and `mlpcli predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpcli.cli import complete
from mlpcli.cli.render import (
    bar,
    console,
    digit_block,
    digit_grid,
    err_console,
    print_json,
    resolve_checkpoint,
    user_errors,
    warn,
)


def eval_command(
    checkpoint: complete.CheckpointArg = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="Dataset name or folder (default: the checkpoint's).", autocompletion=complete.datasets
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Read the dataset's IDX files from this folder.")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="test or train.")] = "test",
    errors: Annotated[
        int, typer.Option("--errors", min=0, help="How many misclassified digits to draw (or list, with --json).")
    ] = 6,
    offline: Annotated[bool, typer.Option("--offline", help="Never touch the network.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Accuracy, loss, per-class scores, the confusion matrix and the worst mistakes of a checkpoint."""
    from mlpcli.cli.data_cmd import download_progress
    from mlpcli.inference.evaluation import as_document, evaluate_checkpoint

    if split not in ("test", "train"):
        raise typer.BadParameter("must be test or train", param_hint="--split")
    with user_errors(json_out):
        path = resolve_checkpoint(checkpoint)
        with download_progress(not json_out) as callbacks:
            ev = evaluate_checkpoint(path, dataset, data_dir, split, offline, callbacks)
    for line in ev.warnings:
        warn(line)
    doc = as_document(ev, errors)
    if json_out:
        print_json(doc)
        return
    _render_eval(ev, doc["per_class"], errors)


def _render_eval(ev: Any, per_class: list[dict[str, Any]], n_errors: int) -> None:
    from rich.table import Table

    r = ev.report
    top3 = f", top-3 {r.top3_accuracy:.2%}" if r.top3_accuracy is not None else ""
    if not per_class:
        top3 += " (right: within 0.1 of the target)"
    console.print(
        f"[bold]{ev.checkpoint}[/] on {ev.dataset} {ev.split} ({r.n:,} images): "
        f"[bold]accuracy {r.accuracy:.2%}[/]{top3}, mean loss {r.loss:.4f}"
    )
    table = Table(title="per class", title_justify="left", show_edge=False)
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for row in per_class:
        label = row["name"] if row["name"] == str(row["class"]) else f"{row['class']} {row['name']}"
        table.add_row(
            label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", f"{row['support']:,}"
        )
    if per_class:  # a regression dataset has neither
        console.print(table)
        console.print(_confusion_table(r.confusion))
    pairs = r.most_confused()
    if pairs:
        console.print("most confused: " + ", ".join(f"{ev.classes[t]} as {ev.classes[p]} ({c})" for t, p, c in pairs))
    wrong = ev.mistakes(n_errors)
    if wrong:
        console.print(f"the {len(wrong)} most confident mistakes:")
        digit_grid(
            [
                (
                    ev.images[m["index"]] / 255.0,
                    f"true {ev.classes[m['true']]}, said {ev.classes[m['predicted']]} {m['confidence']:.0%}",
                )
                for m in wrong
            ]
        )
    console.print(f"evaluated in {r.seconds:.2f} s ({r.n / max(r.seconds, 1e-9):,.0f} images/s)", style="dim")


def _confusion_table(cm: Any) -> Any:
    from rich.table import Table

    table = Table(
        title="confusion matrix (rows: true class, columns: predicted)", title_justify="left", show_edge=False
    )
    table.add_column("")
    for j in range(cm.shape[1]):
        table.add_column(str(j), justify="right")
    off = cm.copy()
    for i in range(cm.shape[0]):
        off[i, i] = 0
    peak = max(int(off.max()), 1)
    for i in range(cm.shape[0]):
        cells = []
        for j in range(cm.shape[1]):
            v = int(cm[i, j])
            if i == j:
                cells.append(f"[bold green]{v}[/]")
            elif v == 0:
                cells.append("[dim]0[/]")
            else:
                heat = int(80 + 175 * v / peak)
                cells.append(f"[rgb(255,{255 - heat + 80},{255 - heat + 80})]{v}[/]")
        table.add_row(str(i), *cells)
    return table


def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files, folders of images, or one CSV file of digits.")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            "-c",
            help="Checkpoint (default: the newest finished run).",
            autocompletion=complete.checkpoints,
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many classes to list.")] = 3,
    raw: Annotated[bool, typer.Option("--raw", help="Skip MNIST preprocessing (28x28, light ink on black).")] = False,
    show: Annotated[bool | None, typer.Option("--show/--no-show", help="Draw the 28x28 the network saw.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    explain: Annotated[
        Path | None,
        typer.Option(
            "--explain",
            help="Write into this folder, per picture, a PNG of each stage: the sheet found, the ink, the 28x28.",
        ),
    ] = None,
    submission: Annotated[
        Path | None, typer.Option("--submission", help="With a CSV input: write Kaggle's ImageId,Label file here.")
    ] = None,
) -> None:
    """Which digit is in each picture, and how sure the network is (or every row of a Kaggle-style CSV)."""
    from mlpcli.inference.predictor import LOW_CONFIDENCE, Predictor, expand_inputs

    csv_inputs = [p for p in images if p.suffix.lower() == ".csv"]
    if csv_inputs or submission is not None:
        _predict_csv(images, checkpoint, submission, json_out)
        return
    with user_errors(json_out):
        predictor = Predictor.load(resolve_checkpoint(checkpoint))
        paths = expand_inputs(images)
        if not paths:
            from mlpcli.errors import ImageError

            raise ImageError("no images found in " + ", ".join(map(str, images)))
        preds, failures = predictor.predict_pictures(paths, raw)
        if explain is not None and not raw:
            from mlpcli.inference.pictures import explain_image

            explain.mkdir(parents=True, exist_ok=True)
            for pred in preds:
                written = explain_image(Path(pred.file), out=explain / f"{Path(pred.file).stem}-explain.png")
                if not json_out:
                    console.print(f"{pred.file}: its stages in {written}", style="dim")
    # every input in the order given: its prediction, or its error
    found = {p.file: p for p in preds} | {str(path): message for path, message in failures}
    ordered = [(str(path), found[str(path)]) for path in paths if str(path) in found]
    if json_out:
        for _, item in ordered:
            if isinstance(item, str):
                err_console.print(f"[bold red]error:[/] {item}")
        print_json([{"file": f, "error": item} if isinstance(item, str) else item.element() for f, item in ordered])
    else:
        show = console.is_terminal if show is None else show
        k = min(top_k, len(predictor.classes))
        for _, p in ordered:
            if isinstance(p, str):
                err_console.print(f"[bold red]error:[/] {p}")
                continue
            if p.warning:
                warn(f"{p.file}: {p.warning}")
            label = p.label if p.label == str(p.prediction) else f"{p.prediction} ({p.label})"
            sure = "" if p.confidence >= LOW_CONFIDENCE else "  [yellow]low confidence: the network is unsure[/]"
            console.print(f"[bold]{p.file}[/]: [bold cyan]{label}[/] ({p.confidence:.1%}){sure}")
            if show:
                console.print(digit_block(p.image), end="")
            for cls, prob in p.top(k):
                console.print(f"  {predictor.classes[cls]:>12} {bar(prob)} {prob:6.1%}")
    if failures:
        raise typer.Exit(1)


def _predict_csv(inputs: list[Path], checkpoint: Path | None, submission: Path | None, json_out: bool) -> None:
    """Every row of one CSV file of 28x28 digits (Kaggle's test.csv), as is: no picture preprocessing."""
    from mlpcli.errors import MlpcliError
    from mlpcli.inference.predictor import Predictor

    with user_errors(json_out):
        if len(inputs) != 1 or inputs[0].suffix.lower() != ".csv":
            raise MlpcliError("a CSV input is predicted alone: give one .csv file (--submission needs one)")
        predictor = Predictor.load(resolve_checkpoint(checkpoint))
        classes = predictor.classes
        probs = predictor.predict_csv(inputs[0])
        predictions = probs.argmax(axis=1)
        if submission is not None:
            from mlpcli.data.csvfile import write_submission

            write_submission(submission, predictions)
    if json_out:
        print_json(
            [
                {
                    "row": i + 1,
                    "prediction": int(p),
                    "label": classes[int(p)],
                    "confidence": float(probs[i, p]),
                    "probabilities": [float(v) for v in probs[i]],
                }
                for i, p in enumerate(predictions)
            ]
        )
        return
    per_class = np_bincount(predictions, len(classes))
    counts = ", ".join(f"{classes[c]}: {n}" for c, n in enumerate(per_class))
    for i, p in enumerate(predictions[:CSV_ROWS_SHOWN]):
        console.print(f"row {i + 1}: {classes[int(p)]} ({float(probs[i, p]):.1%})")
    if len(predictions) > CSV_ROWS_SHOWN:
        console.print(f"... ({len(predictions) - CSV_ROWS_SHOWN:,} more rows: --json or --submission gives all)")
    console.print(f"{inputs[0]}: {len(predictions):,} rows predicted ({counts})")
    if submission is not None:
        console.print(f"wrote {submission} (ImageId,Label; {len(predictions):,} rows)")


CSV_ROWS_SHOWN = 10  # rows of a CSV's predictions drawn on screen


def np_bincount(values: Any, length: int) -> list[int]:
    """How many times each class was predicted."""
    import numpy as np

    return np.bincount(values, minlength=length).tolist()
