"""Where trials run: worker processes on this machine, or Ray tasks on a cluster. One registry entry each.

Every executor implements the Executor interface below and the driver sees no difference;
`mlpcli sweep --executor` takes the registry's names. Adding one is a class and an entry.
This module stays light (the trial code is imported where a trial runs), so the CLI can
read the registry for its help and checks.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mlpcli.errors import MissingExtra, MlpcliError

if TYPE_CHECKING:
    from mlpcli.sweep.trial import TrialSpec


class Executor(Protocol):
    """The executor interface.

    needs_files: True when trials run where the driver's disk is not (their run folders come
    back with their results); where: one line for the user saying where trials run.
    submit(spec) starts a trial and returns a handle; wait(handles, timeout) returns the
    (handle, result dict or exception) pairs that finished; drain() returns the (trial, epoch,
    metrics) reports since the last call; decide(number, epoch, stop) answers a trial's report of
    that epoch (a trial that reports with wait=True blocks until the answer comes, so a prune
    takes effect exactly at the epoch it was decided on); shutdown() ends every worker.
    """

    needs_files: bool
    where: str

    def submit(self, spec: TrialSpec) -> Any: ...
    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any] | BaseException]]: ...
    def drain(self) -> list[tuple[int, int, dict[str, Any]]]: ...
    def decide(self, number: int, epoch: int, stop: bool) -> None: ...
    def shutdown(self) -> None: ...


def _die_with_parent() -> None:
    """Worker initializer: on Linux, end this worker when the sweep's driver dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


DECISION_POLL = 0.01  # seconds between a waiting trial's looks at the driver's answer


class _LocalReporter:
    """Puts epochs on a managed queue; reads the driver's answers from a managed dict."""

    def __init__(self, messages: Any, decisions: Any) -> None:
        self.messages, self.decisions = messages, decisions

    def report(self, number: int, epoch: int, metrics: dict[str, Any], wait: bool = False) -> bool:
        self.messages.put((number, epoch, metrics))
        while wait and (number, epoch) not in self.decisions:
            time.sleep(DECISION_POLL)
        return bool(self.decisions.get((number, epoch), False))


def _local_trial(spec: TrialSpec, reporter: _LocalReporter) -> dict[str, Any]:
    from mlpcli.sweep.trial import run_trial

    return run_trial(spec, reporter)


class LocalExecutor:
    """`parallel` worker processes on this machine."""

    needs_files = False

    def __init__(self, parallel: int) -> None:
        from multiprocessing.managers import SyncManager

        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited threads or locks
        self.manager = SyncManager(ctx=ctx)
        self.manager.start(initializer=_die_with_parent)  # the queue's server, too, ends with the driver
        self.reporter = _LocalReporter(self.manager.Queue(), self.manager.dict())
        self.pool = cf.ProcessPoolExecutor(max_workers=parallel, mp_context=ctx, initializer=_die_with_parent)
        self.where = f"{parallel} local worker process{'es' if parallel > 1 else ''}"

    def submit(self, spec: TrialSpec) -> Any:
        return self.pool.submit(_local_trial, spec, self.reporter)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any] | BaseException]]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out: list[tuple[Any, dict[str, Any] | BaseException]] = []
        for h in done:
            exc = h.exception()
            out.append((h, exc if exc is not None else h.result()))
        return out

    def drain(self) -> list[tuple[int, int, dict[str, Any]]]:
        out = []
        while not self.reporter.messages.empty():
            out.append(self.reporter.messages.get_nowait())
        return out

    def decide(self, number: int, epoch: int, stop: bool) -> None:
        self.reporter.decisions[(number, epoch)] = stop

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.manager.shutdown()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtra("--executor ray needs Ray", "ray") from None
    return ray


class RayExecutor:
    """Trials as Ray tasks on the cluster at `address`; results and epochs come back to this driver."""

    needs_files = True  # no shared filesystem: a trial's files travel back with its result

    def __init__(self, address: str | None, threads: int) -> None:
        ray = self.ray = _import_ray()
        try:
            ray.init(address=address or "auto", log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "RAY_ADDRESS / a local cluster"
            raise MlpcliError(
                f"cannot connect to a Ray cluster at {where}: {exc}; start one with ray start --head"
            ) from None

        @ray.remote(num_cpus=0)
        class Control:  # an actor holding reported epochs and the pruned set
            def __init__(self) -> None:
                self.messages: list[tuple[int, int, dict[str, Any]]] = []
                self.decisions: dict[tuple[int, int], bool] = {}

            def report(self, number: int, epoch: int, metrics: dict[str, Any]) -> None:
                self.messages.append((number, epoch, metrics))

            def decision(self, number: int, epoch: int) -> bool | None:
                return self.decisions.get((number, epoch))

            def drain(self) -> list[tuple[int, int, dict[str, Any]]]:
                out, self.messages = self.messages, []
                return out

            def decide(self, number: int, epoch: int, stop: bool) -> None:
                self.decisions[(number, epoch)] = stop

        self.control = Control.remote()
        self.task = ray.remote(num_cpus=threads, max_retries=0)(_ray_trial)
        resources = ray.cluster_resources()
        self.where = f"Ray cluster {address or 'auto'} ({int(resources.get('CPU', 0))} CPUs)"

    def submit(self, spec: TrialSpec) -> Any:
        return self.task.remote(spec, self.control)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any] | BaseException]]:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        out: list[tuple[Any, dict[str, Any] | BaseException]] = []
        for h in done:
            try:
                out.append((h, self.ray.get(h)))
            except Exception as exc:  # a task that died: its trial failed, the sweep goes on
                out.append((h, exc))
        return out

    def drain(self) -> list[tuple[int, int, dict[str, Any]]]:
        return self.ray.get(self.control.drain.remote())

    def decide(self, number: int, epoch: int, stop: bool) -> None:
        self.control.decide.remote(number, epoch, stop)

    def shutdown(self) -> None:
        self.ray.shutdown()


class _RayReporter:
    def __init__(self, control: Any) -> None:
        self.control = control

    def report(self, number: int, epoch: int, metrics: dict[str, Any], wait: bool = False) -> bool:
        import ray

        ray.get(self.control.report.remote(number, epoch, metrics))
        answer = ray.get(self.control.decision.remote(number, epoch))
        while wait and answer is None:
            time.sleep(DECISION_POLL)
            answer = ray.get(self.control.decision.remote(number, epoch))
        return bool(answer)


def _ray_trial(spec: TrialSpec, control: Any) -> dict[str, Any]:
    from mlpcli.sweep.trial import run_trial

    return run_trial(spec, _RayReporter(control))


@dataclass(frozen=True)
class ExecutorSpec:
    """A registry entry: make(address, parallel, threads) -> Executor; on_this_machine: trials share
    this machine's cores (parallel x threads must fit them)."""

    name: str
    summary: str
    on_this_machine: bool
    make: Callable[[str | None, int, int], Executor]


EXECUTORS: dict[str, ExecutorSpec] = {
    e.name: e
    for e in (
        ExecutorSpec("local", "worker processes on this machine", True, lambda a, parallel, t: LocalExecutor(parallel)),
        ExecutorSpec("ray", "Ray tasks on a cluster (--address)", False, lambda address, p, t: RayExecutor(address, t)),
    )
}


def make_executor(kind: str, address: str | None, parallel: int, threads: int) -> Executor:
    """The executor named kind; MlpcliError naming the choices otherwise."""
    entry = EXECUTORS.get(kind)
    if entry is None:
        raise MlpcliError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    return entry.make(address, parallel, threads)
