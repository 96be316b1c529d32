"""A session trained live: a worker thread per open page, off the server's event loop, the latest frame wins.

The worker trains `speed` optimizer steps every 1/60 s while playing (in ticks of half that, each running the
steps the time since the last one owes), and after each tick, when the state changed and the page has fewer
than IN_FLIGHT frames unacknowledged, computes one frame (frames.py) and hands it to `send`.
Frames are made only as fast as the page paints them: nothing queues, and a slow page
sees the newest state, not a backlog. Training holds the session's lock one tick at a time, so
`POST /api/sessions/{id}/step` and the other routes interleave with it.

What the page may say (JSON text messages, each checked; see Live.command):
    {"play": true|false}     train continuously, or stop
    {"speed": N}             optimizer steps per tick, 1 to MAX_SPEED
    {"step": N}              N steps now (the step button), 1 to MAX_SPEED
    {"ack": N}               N frames painted
    {"focus": [layer, unit] | null}   that hidden unit's map at the boundary's resolution
    {"lr": x}                a new learning rate
    {"weight": {"layer", "i", "j", "value"}}   edit one weight
What it hears: binary frames, and JSON text {"playing": bool, "error": str | null} when either changes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from mlpcli.errors import MlpcliError
from mlpcli.serve.parse import parse_json

TICK = 1.0 / 60.0  # seconds: a display's frame
IN_FLIGHT = 2  # frames sent and not yet acknowledged
UNSEEN = 2.0  # seconds without an acknowledgement (frames in flight) after which a page is taken as not looking
MAX_SPEED = 500  # optimizer steps per tick
DEFAULT_SPEED = 25  # one epoch of the default 500 points (half for test, batches of 10) per tick
MAX_MESSAGE = 4096  # bytes of one message from the page
MAX_RATE = 240  # messages a second from the page (a burst of as many is allowed)


class Flooded(MlpcliError):
    """The page sent more than MAX_RATE messages a second: the socket is closed (1008)."""


class Live:
    """A session's worker thread; `send(bytes | str)` must be safe to call from that thread."""

    def __init__(self, session: Any, send: Callable[[bytes | str], None]) -> None:
        self.session, self.send = session, send
        self.cond = threading.Condition()
        self.playing = False
        self.speed = DEFAULT_SPEED
        self.pending_steps = 0
        self.in_flight = 0
        self.dirty = True
        self.focus: tuple[int, int] | None = None
        self.error: str | None = None
        self.closed = False
        self.sent_at = time.monotonic()  # when the last frame went out
        self._allowance, self._last = float(MAX_RATE), time.monotonic()
        self.thread = threading.Thread(target=self._run, name=f"playground-{session.id[:8]}", daemon=True)
        self.thread.start()

    # ---- the page's messages (event loop) ----------------------------------------------------------------

    def receive(self, text: str) -> None:
        """One message from the page: bounded in size and rate; MlpcliError when it is not one of the above."""
        now = time.monotonic()
        self._allowance = min(MAX_RATE, self._allowance + (now - self._last) * MAX_RATE)
        self._last = now
        if self._allowance < 1:
            raise Flooded(f"more than {MAX_RATE} messages a second")
        self._allowance -= 1
        if len(text) > MAX_MESSAGE:
            raise MlpcliError(f"a message is at most {MAX_MESSAGE} bytes")
        try:
            doc = parse_json(text, max_depth=4)
        except MlpcliError:
            raise MlpcliError("a message must be a JSON object") from None
        if not isinstance(doc, dict) or len(doc) != 1:
            raise MlpcliError("a message is a JSON object with one key")
        ((key, value),) = doc.items()
        self.command(key, value)

    def command(self, key: str, value: Any) -> None:
        """Apply one command (see the module's list); MlpcliError naming it when the value is wrong."""
        with self.cond:
            if key == "play":
                if not isinstance(value, bool):
                    raise MlpcliError("play: true or false")
                self.playing = value
                if value:
                    self.error = None
                self._announce()
            elif key in ("speed", "step"):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPEED:
                    raise MlpcliError(f"{key}: a whole number from 1 to {MAX_SPEED}")
                if key == "speed":
                    self.speed = value
                else:
                    self.pending_steps = min(MAX_SPEED, self.pending_steps + value)
            elif key == "ack":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise MlpcliError("ack: a count of frames")
                self.in_flight = max(0, self.in_flight - value)
            elif key == "focus":
                if value is None:
                    self.focus = None
                elif (
                    isinstance(value, list)
                    and len(value) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 64 for v in value)
                ):
                    self.focus = (value[0], value[1])
                else:
                    raise MlpcliError("focus: [layer, unit] or null")
                self.dirty = True
            elif key == "lr":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise MlpcliError("lr: a number")
                with self.session.lock:
                    self.session.set_rate(float(value))
                self.dirty = True
            elif key == "weight":
                if not isinstance(value, dict):
                    raise MlpcliError('weight: {"layer", "i", "j", "value"}')
                with self.session.lock:
                    self.session.set_weight_doc(value)
                self.dirty = True
            else:
                raise MlpcliError(f"unknown message {key[:40]!r}")
            self.cond.notify()

    def close(self) -> None:
        """Stop the worker (the page went away)."""
        with self.cond:
            self.closed = True
            self.cond.notify()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)

    # ---- the worker ------------------------------------------------------------------------------------------

    def _announce(self) -> None:
        self.send(json.dumps({"playing": self.playing, "error": self.error}))

    def _train(self, count: int) -> None:
        try:
            with self.session.lock:
                self.session.advance(count)
                done = self.session.stepper.done
        except MlpcliError as exc:  # diverged: say so and stop
            with self.cond:
                self.playing, self.error, self.pending_steps = False, str(exc), 0
                self._announce()
            return
        with self.cond:
            self.dirty = True
            if done and self.playing:
                self.playing = False
                self._announce()

    def _run(self) -> None:
        last = due = time.monotonic()
        owed = 0.0  # steps due at `speed` a display frame and not run yet
        try:
            while True:
                with self.cond:
                    while True:
                        if self.closed:
                            return
                        now = time.monotonic()
                        if not self.playing:
                            last = due = now
                            owed = 0.0
                        # a page that stopped painting (hidden, frozen, gone) stops training until it paints again
                        unseen = self.in_flight >= IN_FLIGHT and now - self.sent_at > UNSEEN
                        if unseen:
                            last = due = now
                        tick = self.playing and now >= due and not unseen
                        if tick or self.pending_steps or (self.dirty and self.in_flight < IN_FLIGHT):
                            break
                        self.cond.wait(due - now if self.playing and not unseen else 1.0)
                    count, self.pending_steps = self.pending_steps, 0
                    if tick:  # the steps the time since the last tick owes; late ticks never make up in bursts
                        owed = min(owed + self.speed * (now - last) / TICK, 4.0 * self.speed)
                        count += int(owed)
                        owed -= int(owed)
                        last, due = now, max(due + TICK / 2, now)
                if count:
                    self._train(count)
                with self.cond:
                    frame_now = self.dirty and self.in_flight < IN_FLIGHT
                    focus = self.focus
                    if frame_now:
                        self.dirty = False
                        self.in_flight += 1
                if frame_now:
                    with self.session.lock:
                        data = self.session.live_frame(focus)
                    self.session.touched = self.sent_at = time.monotonic()  # a page watching it keeps it alive
                    self.send(data)
        except Exception as exc:  # noqa: BLE001 - the page is told, the server goes on
            message = str(exc) if isinstance(exc, MlpcliError) else f"the session stopped: {exc!r}"[:300]
            try:
                self.send(json.dumps({"playing": False, "error": message}))
            except Exception:  # noqa: BLE001 - the page is gone
                pass
