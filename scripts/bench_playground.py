"""The playground as a learner sees it: frames/s, steps/s and points/s of the real page in headless Chromium,
beside TensorFlow Playground built from its own repository, in the same run; and the spiral's time to 95 %.

    python scripts/bench_playground.py [--seconds 10] [--rounds 3] [--tp DIST] [--screenshots DIR]

- The pages are opened at 1280x900 with their configuration in the URL (the hash), no control touched but
  play. Cases: the spiral with 8-8-8 tanh units, SGD at 0.03, batches of 10, half the points for testing, every
  neuron's map shown (both pages show every neuron); TensorFlow Playground's default 4-2 network on it; and
  mlpcli's largest, 6 layers of 32 (TensorFlow Playground has at most 8 a layer).
- A frame counts when the decision-boundary canvas's pixels change: a requestAnimationFrame loop in the page
  hashes the canvas's pixels every display frame (the same code on both pages).
- Steps/s and points/s: mlpcli's page shows the optimizer step in #step (points = steps x batch);
  TensorFlow Playground trains one epoch over the training points per frame (#iter-number, points = epochs x
  the training points).
- Then mlpcli's page opened with the "more neurons" preset's spiral (500 points, no noise, 16-16-16 tanh, Adam
  at 0.01, batches of 10, half for testing): seconds from pressing play to 95 % test accuracy (#test-acc).

TensorFlow Playground is not shipped with mlpcli; build it once (docs/PLAYGROUND.md says how) and pass its
dist/ folder with --tp (or MLPCLI_TP_DIST). Without it only mlpcli's page is measured. Both pages are served on
127.0.0.1 by this script and stopped by their own process ids. Run it on a quiet machine: nothing else training.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

SPIRAL = {"data": {"dataset": "spiral", "noise": 0, "points": 500, "test_ratio": 0.5}}
CASES = {
    "8-8-8": [8, 8, 8],
    "4-2": [4, 2],
    "6x32": [32] * 6,  # the playground's largest network (TensorFlow Playground stops at 8 a layer: mlpcli only)
}
TP_HASH = (
    "activation=tanh&regularization=none&batchSize=10&dataset=spiral&learningRate=0.03&noise=0&percTrainData=50"
    "&x=true&y=true&xTimesY=false&xSquared=false&ySquared=false&cosX=false&sinX=false&cosY=false&sinY=false"
    "&problem=classification&seed=0.5&networkShape={shape}"
)
TP_TRAIN_POINTS = 250  # 500 points, half for training

COUNTER = """
window.__bench = {frames: 0, last: null, t0: performance.now(), running: true};
const canvas = document.querySelector(arguments[0]);
const g = canvas.getContext('2d', {willReadFrequently: false});
function tick() {
  if (!window.__bench.running) return;
  const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 2166136261 >>> 0;
  for (let i = 0; i < d.length; i += 4) {
    h ^= d[i] | (d[i + 1] << 8) | (d[i + 2] << 16);
    h = Math.imul(h, 16777619) >>> 0;
  }
  if (window.__bench.last !== null && h !== window.__bench.last) window.__bench.frames++;
  window.__bench.last = h;
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def browser() -> Any:
    """The headless Chromium the browser tests drive (tests/browser.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from browser import headless_chromium

    return headless_chromium()


def ours_url(base: str, hidden: list[int], optimizer: dict[str, Any]) -> str:
    doc = {
        **SPIRAL,
        "model": {"hidden": hidden, "activation": "tanh"},
        "optimizer": optimizer,
        "train": {"batch_size": 10},
    }
    return f"{base}/#{urllib.parse.quote(json.dumps(doc))}"


def measure(b: Any, url: str, canvas: str, play: str, counter: str, seconds: float, tp: bool) -> dict[str, float]:
    """Open url, press play, count changed boundary frames and the step (epoch) counter over seconds."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    b.get("about:blank")
    b.get(url)
    if tp:
        WebDriverWait(b, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heatmap canvas"))
    else:
        WebDriverWait(b, 60).until(
            lambda d: (
                d.find_element(By.ID, "step").text == "0"
                and d.execute_script("return document.querySelectorAll('#network .node.unit').length > 0")
            )
        )
    time.sleep(1.0)
    b.find_element(By.CSS_SELECTOR, play).click()
    time.sleep(1.0)  # warm up
    b.execute_script(COUNTER, canvas)
    start = int(b.find_element(By.CSS_SELECTOR, counter).text.replace(",", ""))
    t0 = time.perf_counter()
    time.sleep(seconds)
    frames = b.execute_script("window.__bench.running = false; return window.__bench.frames")
    end = int(b.find_element(By.CSS_SELECTOR, counter).text.replace(",", ""))
    elapsed = time.perf_counter() - t0
    count = (end - start) / elapsed
    return {
        "frames_per_s": frames / elapsed,
        "steps_per_s": count,
        "points_per_s": count * (TP_TRAIN_POINTS if tp else 10),
    }


def spiral_time(b: Any, base: str, limit: float = 60.0) -> float | None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    b.get("about:blank")
    b.get(ours_url(base, [16, 16, 16], {"name": "adam", "lr": 0.01}))
    WebDriverWait(b, 60).until(lambda d: d.find_element(By.ID, "step").text == "0")
    time.sleep(1.0)
    b.find_element(By.ID, "play").click()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        text = b.find_element(By.ID, "test-acc").text.rstrip("%")
        if text not in ("", "–") and float(text) >= 95.0:
            return time.perf_counter() - t0
        time.sleep(0.05)
    return None


def serve(args: list[str], cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tp", default=os.environ.get("MLPCLI_TP_DIST"), help="TensorFlow Playground's dist/")
    parser.add_argument("--screenshots", default=None, help="save a screenshot of each page here")
    args = parser.parse_args()
    servers = []
    port = free_port()
    servers.append(serve([sys.executable, "-m", "mlpcli", "playground", "--port", str(port)]))
    base = f"http://127.0.0.1:{port}"
    tp_base = None
    if args.tp:
        tp_port = free_port()
        servers.append(serve([sys.executable, "-m", "http.server", str(tp_port), "--bind", "127.0.0.1"], Path(args.tp)))
        tp_base = f"http://127.0.0.1:{tp_port}/index.html"
    b = None
    results: dict[str, list[dict[str, float]]] = {}
    try:
        wait_up(base + "/api/datasets")
        if tp_base:
            wait_up(tp_base)
        b = browser()
        for _ in range(args.rounds):  # interleaved: each round measures every page and case once
            for name, hidden in CASES.items():
                url = ours_url(base, hidden, {"name": "sgd", "lr": 0.03})
                results.setdefault(f"mlpcli {name}", []).append(
                    measure(b, url, "#boundary", "#play", "#step", args.seconds, tp=False)
                )
                if args.screenshots and name == "8-8-8":
                    b.save_screenshot(str(Path(args.screenshots) / "bench-mlpcli.png"))
                if tp_base and max(hidden) <= 8:
                    url = f"{tp_base}#{TP_HASH.format(shape=','.join(map(str, hidden)))}"
                    results.setdefault(f"TensorFlow Playground {name}", []).append(
                        measure(b, url, "#heatmap canvas", "#play-pause-button", "#iter-number", args.seconds, tp=True)
                    )
                    if args.screenshots and name == "8-8-8":
                        b.save_screenshot(str(Path(args.screenshots) / "bench-tp.png"))
        spiral = [spiral_time(b, base) for _ in range(args.rounds)]
    finally:
        if b is not None:
            b.quit()
        for p in servers:
            p.terminate()
            p.wait(timeout=10)
    report: dict[str, Any] = {}
    for key, rows in results.items():
        report[key] = {
            k: {"median": round(statistics.median(r[k] for r in rows), 1), "all": [round(r[k], 1) for r in rows]}
            for k in rows[0]
        }
    report["mlpcli spiral 16-16-16 Adam: seconds to 95 % test accuracy"] = [
        None if s is None else round(s, 2) for s in spiral
    ]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
