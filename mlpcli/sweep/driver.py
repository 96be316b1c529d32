"""The sweep driver: Optuna proposes trials and keeps the records, an executor runs them.

Only the driver touches Optuna: its journal file sits in the sweep folder, so a sweep
continues where it stopped when the same command runs again. Trials that were running when
the driver died are recorded as superseded and run again; finished ones never are.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mlpcli.config import config_from_dict
from mlpcli.errors import ConfigError, MissingExtra, MlpcliError
from mlpcli.events import Callback, Message, emit
from mlpcli.files.atomic import write_bytes, write_text
from mlpcli.runs.folder import RunFolder
from mlpcli.sweep.events import SweepInvalid, SweepStart, TrialEnded, TrialEpoch, TrialStarted
from mlpcli.sweep.executors import EXECUTORS, make_executor
from mlpcli.sweep.spec import SweepSpec, check_trials, decode, encode, load_sweep, trial_overrides
from mlpcli.sweep.trial import TrialSpec
from mlpcli.training.threads import usable_cores

log = logging.getLogger(__name__)

STATE_NAMES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtra("sweeps need Optuna", "sweep") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI renders trials itself
    return optuna


def _sampler(optuna: Any, spec: SweepSpec, offset: int = 0) -> Any:
    """The search's sampler; offset (the trials the study already has) makes a rerun of a random or bayes
    search draw new points instead of the first run's again."""
    seed = (spec.seed + offset) % 2**32
    if spec.method == "grid":
        space = {k: [encode(v) for v in p.endpoints()] for k, p in spec.parameters.items()}
        return optuna.samplers.GridSampler(space, seed=seed)
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(optuna: Any, spec: SweepSpec) -> Any:
    et = spec.early_terminate
    if et is None:
        return optuna.pruners.NopPruner()
    if et.type == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=et.min_epochs)
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=et.min_epochs - 1)


def _suggest(trial: Any, key: str, p: Any) -> Any:
    if p.values is not None:
        return decode(trial.suggest_categorical(key, [encode(v) for v in p.values]))
    if p.distribution == "int_uniform":
        return trial.suggest_int(key, int(p.min), int(p.max))
    return trial.suggest_float(key, p.min, p.max, log=p.distribution == "log_uniform")


def run_sweep(
    path: Path,
    *,
    executor: str = "local",
    address: str | None = None,
    parallel: int | None = None,
    trials: int | None = None,
    out: Path | None = None,
    offline: bool = False,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Run (or continue) the sweep in `path`; returns the summary document (also written to summary.json)."""
    optuna = _import_optuna()
    spec, base, base_path = load_sweep(path)
    problems = check_trials(spec, base, base_path)
    if problems:
        raise SweepInvalid(problems)
    n_trials, parallel = trials or spec.trials, parallel or spec.budget.parallel
    local = executor in EXECUTORS and EXECUTORS[executor].on_this_machine
    if local and parallel > usable_cores():  # parallel x threads must fit the cores
        emit(
            callbacks,
            Message(
                f"parallel {parallel} is more than the {usable_cores()} usable cores; running "
                f"{usable_cores()} trials at a time",
                "warning",
            ),
        )
        parallel = usable_cores()
    folder = out or Path("runs") / "sweeps" / spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlpcliError(f"cannot create the sweep folder {folder}: {exc.strerror or exc}") from None
    with RunFolder(folder).lock():  # one driver per sweep folder
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        journal = (folder / "study.journal").resolve()
        # mlpcli's lock is held: no other process can hold Optuna's, so one left by a crash is stale
        journal.with_name(journal.name + ".lock").unlink(missing_ok=True)
        storage = JournalStorage(JournalFileBackend(str(journal)))
        maximize = spec.metric.goal == "maximize"
        study = optuna.create_study(
            study_name=spec.name,
            storage=storage,
            sampler=_sampler(optuna, spec),
            pruner=_pruner(optuna, spec),
            direction="maximize" if maximize else "minimize",
            load_if_exists=True,
        )
        if "spec" not in study.user_attrs:
            study.set_user_attr("spec", spec.model_dump(mode="json"))
            study.set_user_attr("search", spec.search())
        elif study.user_attrs.get("search", spec.search()) != spec.search():
            raise MlpcliError(
                f"{folder} holds a study of another search (its method, metric or parameters differ from {path}); "
                "start a new one with --out NEW_FOLDER or another name, or restore the sweep file"
            )
        if study.trials and spec.method != "grid":  # a rerun continues the search (a grid knows what it visited)
            study.sampler = _sampler(optuna, spec, offset=len(study.trials))
        superseded = set(study.user_attrs.get("superseded", []))
        stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
        for t in stale:  # the previous driver died while these ran: record them as superseded, run them again
            _tell(study, t.number, state=optuna.trial.TrialState.FAIL)
            superseded.add(t.number)
            study.enqueue_trial(t.params, skip_if_exists=False)
            _mark_superseded(t.user_attrs.get("run_dir"))
        study.set_user_attr("superseded", sorted(superseded))

        def counted() -> int:
            return sum(
                1 for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.number not in superseded
            )

        if "mlflow" in (base.get("train") or {}).get("track", []) and "mlflow_parent" not in study.user_attrs:
            parent = _mlflow_parent(spec, base, callbacks)  # the sweep as a parent run, each trial nested under it
            if parent:
                study.set_user_attr("mlflow_parent", parent)
        threads = max(1, usable_cores() // parallel) if local else 1
        runner = make_executor(executor, address, parallel, threads)
        emit(
            callbacks,
            SweepStart(
                spec.name,
                str(folder),
                n_trials,
                parallel,
                threads,
                runner.where,
                counted(),
                len(stale),
                spec.metric.name,
            ),
        )
        try:
            _loop(
                optuna,
                study,
                spec,
                base,
                base_path,
                folder,
                runner,
                n_trials,
                parallel,
                threads,
                maximize,
                offline,
                counted,
                callbacks,
            )
        finally:
            runner.shutdown()
        doc = summary(optuna, study, spec, superseded)
        write_text(folder / "summary.json", json.dumps(doc, indent=2, default=str) + "\n")
        return doc


def _mlflow_parent(spec: SweepSpec, base: dict[str, Any], callbacks: list[Callback] | None) -> str | None:
    """An MLflow parent run for the sweep; None (and one warning) when MLflow cannot be reached."""
    try:
        from mlpcli.training.tracking.mlflow import client, experiment_id

        mlflow = client((base.get("train") or {}).get("mlflow_uri"))
        name = str(base.get("name") or "mlpcli")
        run = mlflow.create_run(
            experiment_id(mlflow, name), run_name=f"sweep {spec.name}", tags={"mlpcli.sweep": spec.name}
        )
        return str(run.info.run_id)
    except Exception as exc:  # tracking never costs a sweep
        emit(callbacks, Message(f"mlflow tracking is off for this sweep: {str(exc).splitlines()[0][:300]}", "warning"))
        return None


def _mark_superseded(run_dir: str | None) -> None:
    """A trial that died with its driver: its run folder says superseded (it runs again as a new trial)."""
    if not run_dir:
        return
    run = RunFolder(Path(run_dir))
    status = run.read_status(live=False)
    if status is None or status.status != "running" or run.is_locked():
        return
    status.status, status.error = "superseded", "its sweep was stopped; the trial ran again with the same parameters"
    try:
        run.write_status(status)
    except OSError:
        pass


def _loop(
    optuna: Any,
    study: Any,
    spec: SweepSpec,
    base: dict[str, Any],
    base_path: Path,
    folder: Path,
    runner: Any,
    n_trials: int,
    parallel: int,
    threads: int,
    maximize: bool,
    offline: bool,
    counted: Any,
    callbacks: list[Callback] | None,
) -> None:
    running: dict[Any, tuple[Any, Path]] = {}
    by_number: dict[int, Any] = {}
    pruning = spec.early_terminate is not None
    labels = {"mlflow_parent": study.user_attrs["mlflow_parent"]} if study.user_attrs.get("mlflow_parent") else {}
    while True:
        while len(running) < parallel and counted() + len(running) < n_trials:
            trial = study.ask()
            params = {k: _suggest(trial, k, p) for k, p in spec.parameters.items()}
            run_dir = folder / "trials" / f"{trial.number:03d}"
            overrides = [*trial_overrides(params), f"train.threads={threads}"]
            try:
                config_from_dict(base, str(base_path), overrides)
            except ConfigError as exc:  # a drawn combination the checks could not foresee: this trial fails
                trial.set_user_attr("reason", str(exc))
                _tell(study, trial, state=optuna.trial.TrialState.FAIL)
                emit(callbacks, TrialEnded(trial.number, "failed", None, str(exc)))
                continue
            run_dir.mkdir(parents=True, exist_ok=True)
            trial.set_user_attr("run_dir", str(run_dir))
            job = TrialSpec(
                trial.number,
                spec.name,
                base,
                overrides,
                params,
                spec.metric.name,
                maximize,
                None if runner.needs_files else str(run_dir),
                offline,
                labels=labels,
                pruning=pruning,
            )
            running[runner.submit(job)] = (trial, run_dir)
            by_number[trial.number] = trial
            emit(callbacks, TrialStarted(trial.number, params, str(run_dir)))
        if not running:
            return
        finished = runner.wait(list(running), timeout=0.02 if pruning else 0.25)  # trials wait for the answers
        for number, epoch, metrics in runner.drain():
            trial = by_number.get(number)
            value = metrics.get(spec.metric.name)
            stop = False
            if trial is not None and value is not None and pruning:
                trial.report(float(value), epoch)
                stop = trial.should_prune()
            if pruning:
                runner.decide(number, epoch, stop)  # the trial waits for this answer about this epoch
            emit(callbacks, TrialEpoch(number, epoch, value, stop))
        for handle, result in finished:
            trial, run_dir = running.pop(handle)
            _finish(optuna, study, trial, run_dir, result, callbacks)


def _tell(study: Any, *args: Any, **kwargs: Any) -> None:
    """study.tell; Optuna's GridSampler calls study.stop() when the grid is done, which only works inside
    study.optimize and raises here after the result is stored: that is not an error for an ask-and-tell driver."""
    try:
        study.tell(*args, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _finish(optuna: Any, study: Any, trial: Any, run_dir: Path, result: Any, callbacks: list[Callback] | None) -> None:
    states = optuna.trial.TrialState
    if isinstance(result, BaseException):
        state, value, reason = "failed", None, f"{type(result).__name__}: {result}"
    else:
        state, value, reason = result["state"], result["value"], result["reason"]
        for name, data in (result.get("files") or {}).items():  # from a cluster: the run folder comes back here
            write_bytes(run_dir / name, data)
    if reason:
        trial.set_user_attr("reason", reason)
    if state == "complete" and value is not None:
        _tell(study, trial, value)
    elif state == "pruned":
        _tell(study, trial, state=states.PRUNED)
    else:
        state = "failed"
        _tell(study, trial, state=states.FAIL)
    emit(callbacks, TrialEnded(trial.number, state, value, reason))


def summary(optuna: Any, study: Any, spec: SweepSpec, superseded: set[int]) -> dict[str, Any]:
    """The sweep's trials (superseded ones left out), ranked, the best, and which parameter mattered most."""
    maximize = spec.metric.goal == "maximize"
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.number in superseded:
            continue
        run_dir = t.user_attrs.get("run_dir")
        rows.append(
            {
                "number": t.number,
                "params": {k: decode(v) for k, v in t.params.items()},
                "state": STATE_NAMES.get(t.state.name, t.state.name.lower()),
                "value": t.value,
                "run_dir": run_dir,
                "checkpoint": str(RunFolder(Path(run_dir)).checkpoint) if run_dir else None,
                "reason": t.user_attrs.get("reason"),
            }
        )
    done = [r for r in rows if r["value"] is not None and r["state"] == "complete"]
    done.sort(key=lambda r: r["value"], reverse=maximize)
    importance = None
    varied = [k for k in spec.parameters if len({repr(r["params"].get(k)) for r in done}) > 1]
    if len(done) >= 3 and len(varied) >= 2:  # a key with one value cannot have mattered
        try:
            importance = dict(optuna.importance.get_param_importances(study, params=varied))
        except Exception as exc:  # Optuna cannot always tell (e.g. a parameter that never varied)
            log.info("no parameter importance: %s", exc)
    return {
        "name": spec.name,
        "metric": spec.metric.model_dump(),
        "method": spec.method,
        "trials": sorted(rows, key=lambda r: r["number"]),
        "ranked": [r["number"] for r in done],
        "best": done[0] if done else None,
        "importance": importance,
    }
