"""The playground's speed: frames and training steps per second, and how long the spiral takes.

    python scripts/bench_playground.py [--seconds 10] [--steps-per-frame 10]

A 2-8-8-2 tanh network on 500 points, a 64x64 boundary grid and every neuron's heat map per frame
(what the page asks for), through the session object the server uses (JSON encoding included,
HTTP not). Then the spiral preset of configs/playground/spiral.yaml stepped until its test accuracy
reaches 95 %. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import time

from mlpcli.config import load_config
from mlpcli.serve.playground.sessions import Session, playground_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps-per-frame", type=int, default=10)
    args = parser.parse_args()
    session = Session(playground_config({"data": {"dataset": "spiral", "points": 500}, "model": {"hidden": [8, 8]}}))
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        session.step(args.steps_per_frame)
        json.dumps(session.frame(64))
        frames += 1
    seconds = time.perf_counter() - start
    cfg = load_config("playground/spiral").model_dump(mode="json")
    cfg["train"]["epochs"] = 100000
    spiral = Session(playground_config(cfg))
    t0, reached = time.perf_counter(), None
    while time.perf_counter() - t0 < 300:
        if spiral.step(100)["test_accuracy"] >= 0.95:
            reached = time.perf_counter() - t0
            break
    report = {
        "frames_per_s": frames / seconds,
        "steps_per_s": frames * args.steps_per_frame / seconds,
        "steps_per_frame": args.steps_per_frame,
        "spiral_seconds_to_95": reached,
        "spiral_steps": spiral.steps,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
