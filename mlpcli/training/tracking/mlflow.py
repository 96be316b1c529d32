"""MLflow: the run as an MLflow run (the `track` extra), through MLflow's client.

Parameters: the resolved config, flattened with dotted keys. Metrics: each epoch's row, with the
epoch as the step, then the test accuracy and loss. Tags: the run folder, mlpcli's version, the
status; a sweep trial is nested under its sweep's parent run. Artifacts at the end: config.yaml,
metrics.csv, status.json and the checkpoints. Tracking URI: train.mlflow_uri, else
MLFLOW_TRACKING_URI, else MLflow's own local default. An unreachable server is one warning.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from mlpcli.config import flatten
from mlpcli.errors import MissingExtra
from mlpcli.runs.folder import RunStatus
from mlpcli.training.tracking.base import TrackedRun, Tracker
from mlpcli.version import __version__

STATES = {"finished": "FINISHED", "interrupted": "KILLED", "pruned": "KILLED"}
BATCH = 100  # MLflow takes at most this many parameters per call


def client(uri: str | None) -> Any:
    """An MlflowClient for uri (None: MLFLOW_TRACKING_URI or MLflow's default), failing fast on a dead server."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # its INFO lines stay off the terminal (--verbose)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MissingExtra("train.track mlflow needs mlflow", "track") from None
    quiet = os.environ["MLFLOW_LOGGING_LEVEL"].upper() != "INFO"
    for logger in ("alembic", "sqlalchemy", "urllib3") if quiet else ():  # what MLflow's stores log through
        logging.getLogger(logger).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow: Any, name: str) -> str:
    """The id of experiment `name`, created when missing."""
    found = mlflow.get_experiment_by_name(name)
    return found.experiment_id if found is not None else mlflow.create_experiment(name)


class MlflowTracker(Tracker):
    """Logs a run's config, epochs, status and files to MLflow."""

    name = "mlflow"

    def start(self, run: TrackedRun) -> None:
        from mlflow.entities import Param

        cfg = run.prepared.cfg
        self.mlflow = client(cfg.train.mlflow_uri)
        tags = {"mlpcli.run_folder": str(run.folder.path.resolve()), "mlpcli.version": __version__}
        if run.labels.get("mlflow_parent"):
            tags["mlflow.parentRunId"] = str(run.labels["mlflow_parent"])
        if run.labels.get("sweep"):
            tags["mlpcli.sweep"] = str(run.labels["sweep"])
        created = self.mlflow.create_run(experiment_id(self.mlflow, cfg.name), run_name=run.folder.path.name, tags=tags)
        self.run_id = created.info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in flatten(cfg.model_dump(mode="json")).items()]
        for i in range(0, len(params), BATCH):
            self.mlflow.log_batch(self.run_id, params=params[i : i + BATCH])

    def epoch(self, run: TrackedRun, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row["epoch"])
        metrics = [
            Metric(k, float(v), now, step) for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))
        ]
        self.mlflow.log_batch(self.run_id, metrics=metrics)

    def end(self, run: TrackedRun, status: RunStatus) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        final = [
            Metric(k, float(getattr(status, k)), now, status.epochs_done or 0)
            for k in ("test_accuracy", "test_loss")
            if getattr(status, k) is not None
        ]
        if final:
            self.mlflow.log_batch(self.run_id, metrics=final)
        self.mlflow.set_tag(self.run_id, "mlpcli.status", status.status)
        for path in (run.folder.config, run.folder.metrics, run.folder.status_file, run.folder.checkpoint):
            if path.is_file():
                self.mlflow.log_artifact(self.run_id, str(path))
        self.mlflow.set_terminated(self.run_id, STATES.get(status.status, "FAILED"))
