"""How many threads training computes with: a fixed number, or `auto`, decided from the machine and re-decided.

The threads are BLAS's: every product of a batch is split among them, and its bits do not depend on
how many there are (nn/products.py; checked for each count before it is used, blas_agree.py). They
wait for each other inside every product: when another process takes one of their cores, every batch
stalls (two trainings at once ran 40x slower here). `auto` therefore counts the cores this process may
use, subtracts what other processes keep busy (measured from /proc/stat against this process's own CPU
time) and one core for the batch-preparing worker thread when there is one, and looks again every half
second while training. The count changes the speed, never the weights.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlpcli.events import BatchEnd, Message

RECHECK_SECONDS = 0.5


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def _busy_seconds(cpus: set[int] | None) -> float | None:
    """CPU-seconds spent busy so far on the given CPUs (all when None), from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        busy += values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return busy / tick


def _own_seconds() -> float:
    """CPU-seconds of this process (all its threads, BLAS's among them), from os.times()."""
    t = os.times()
    return t.user + t.system


@dataclass
class LoadSample:
    """A point in time: wall clock, busy CPU-seconds of the machine, and of this process."""

    wall: float
    busy: float | None
    own: float


class ThreadGovernor:
    """Decides training's thread count, fixed (`threads` an int) or auto (None), and gives BLAS that many.

    Use as an event callback (it re-decides on BatchEnd every RECHECK_SECONDS) inside `with`.
    `reserve` cores are kept free for other work of this process (the batch worker thread).
    same_bits(n), when given, says whether n threads give the bits of one (blas_agree.py); a count for which
    it says no is replaced by one thread, so the weights stay the same. Messages about its choices go to
    `notify` (an event callback).
    """

    def __init__(
        self,
        threads: int | None,
        reserve: int = 0,
        notify: object = None,
        same_bits: Callable[[int], bool] | None = None,
    ) -> None:
        from threadpoolctl import ThreadpoolController  # loaded with numpy, so --help stays fast

        self.fixed, self.reserve = threads, reserve
        self.same_bits = same_bits
        self._agrees: dict[int, bool] = {}  # same_bits' answers, asked once a count
        self.cores = usable_cores()
        try:
            self.cpus: set[int] | None = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cpus = None
        self.controller = ThreadpoolController()
        self.notify = notify
        self.threads = 0
        self.reason = ""
        self._last: LoadSample | None = None
        self._restore: object = None

    def sample(self) -> LoadSample:
        """The current load sample."""
        return LoadSample(time.monotonic(), _busy_seconds(self.cpus), _own_seconds())

    def others_busy(self, before: LoadSample, after: LoadSample) -> float | None:
        """Cores other processes kept busy between two samples; None when it cannot be measured."""
        wall = after.wall - before.wall
        if before.busy is None or after.busy is None or wall <= 0:
            return None
        return max((after.busy - before.busy) - (after.own - before.own), 0.0) / wall

    def decide(self, others: float | None) -> tuple[int, str]:
        """(threads, why) for `others` cores kept busy by other processes."""
        if self.fixed is not None:
            return self.fixed, "as configured"
        free = self.cores - (others or 0.0)
        threads = int(free + 0.3) - (self.reserve if self.cores > self.reserve else 0)
        threads = min(max(threads, 1), self.cores)
        busy = f"other processes keep {others:.1f} of them busy" if others is not None else "their load is unknown"
        worker = ", 1 left for the batch worker" if self.reserve and self.cores > 1 else ""
        return threads, f"auto: {self.cores} cores, {busy}{worker}"

    def agrees(self, threads: int) -> bool:
        """Whether `threads` BLAS threads give the bits of one for this training (True without same_bits)."""
        if threads <= 1 or self.same_bits is None:
            return True
        if threads not in self._agrees:
            self._agrees[threads] = self.same_bits(threads)
        return self._agrees[threads]

    def apply(self, threads: int, reason: str) -> None:
        """Set BLAS's thread count (no-op when unchanged); one thread where `threads` would change the bits."""
        if not self.agrees(threads):
            reason = (
                f"BLAS gives other bits on {threads} threads here, so one thread keeps the weights reproducible; "
                "train.reproducible=false uses them all"
            )
            threads = 1
        if threads != self.threads:
            previous = self.threads
            self.controller.limit(limits=threads, user_api="blas")
            self.threads, self.reason = threads, reason
            if previous and callable(self.notify):
                self.notify(Message(f"threads {previous} -> {threads} ({reason})", "detail"))

    def start(self, probe_seconds: float = 0.1) -> None:
        """Decide before training: a fixed count at once, auto after a short look at the machine."""
        self._restore = self.controller.info()
        self.threads = 0  # entered again after stop(): BLAS was given its threads back, so limit it anew
        if self.fixed is not None:
            self.apply(*self.decide(None))
            return
        before = self.sample()
        time.sleep(probe_seconds)
        self._last = self.sample()
        self.apply(*self.decide(self.others_busy(before, self._last)))

    def stop(self) -> None:
        """Give BLAS back the thread counts it had before start()."""
        for lib in self._restore or []:
            self.controller.select(filepath=lib["filepath"]).limit(limits=lib["num_threads"])

    def __enter__(self) -> ThreadGovernor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __call__(self, event: object) -> None:
        if self.fixed is not None or not isinstance(event, BatchEnd) or self._last is None:
            return
        now = time.monotonic()
        if now - self._last.wall < RECHECK_SECONDS:
            return
        current = self.sample()
        others = self.others_busy(self._last, current)
        self._last = current
        self.apply(*self.decide(others))
