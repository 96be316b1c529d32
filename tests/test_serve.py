"""`mlpcli serve`: the API against `mlpcli predict`, bad uploads, concurrency, and the page in a real browser."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from helpers import chromium
from PIL import Image
from typer.testing import CliRunner

from mlpcli.cli.main import app as cli_app
from mlpcli.data.load import load_dataset
from mlpcli.files import checkpoint

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from mlpcli.serve.app import MAX_UPLOAD, create_app  # noqa: E402

CONFIGS = Path(__file__).parent.parent / "configs"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def ckpt_path(sample_model) -> Path:
    return sample_model


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> list[Path]:
    """Test digits of the shipped sample as pictures of several kinds (black on white, scaled, RGB, JPEG)."""
    folder = tmp_path_factory.mktemp("pictures")
    data = load_dataset("mnist-sample")
    paths = []
    for i in range(8):
        digit = data.test_x[i].reshape(28, 28)
        img = Image.fromarray(255 - digit).resize((112, 112)) if i % 2 else Image.fromarray(digit)
        if i % 3 == 0:
            img = img.convert("RGB")
        path = folder / f"digit{i}.{'jpg' if i == 5 else 'png'}"
        img.save(path)
        paths.append(path)
    return paths


def _post(client: TestClient, path: Path, data: bytes | None = None) -> tuple[int, dict]:
    content = path.read_bytes() if data is None else data
    response = client.post("/api/predict", files={"image": (path.name, content, "application/octet-stream")})
    return response.status_code, response.json()


def _client(ckpt_path: Path) -> TestClient:
    """The app as a browser on this machine reaches it (Host 127.0.0.1)."""
    return TestClient(create_app(ckpt_path), base_url="http://127.0.0.1:8000")


def test_predictions_equal_mlpcli_predict_for_the_same_files(ckpt_path, pictures) -> None:
    client = _client(ckpt_path)
    cli = CliRunner().invoke(cli_app, ["predict", *map(str, pictures), "-c", str(ckpt_path), "--json"])
    assert cli.exit_code == 0, cli.output
    expected = {Path(d["file"]).name: d for d in json.loads(cli.stdout)}
    for path in pictures:
        status, doc = _post(client, path)
        assert status == 200, doc
        want = expected[path.name]
        assert doc["file"] == path.name and doc["prediction"] == want["prediction"] and doc["label"] == want["label"]
        np.testing.assert_allclose(doc["probabilities"], want["probabilities"], atol=1e-6)
        assert doc["confidence"] == pytest.approx(want["confidence"], abs=1e-6)
        assert np.array(doc["image"]).shape == (28, 28)
        assert [len(a) for a in doc["activations"]] == checkpoint.load(ckpt_path).layer_sizes[1:-1]
        assert len(doc["top_units"]) == 6 and np.array(doc["top_units"][0]["template"]).shape == (28, 28)
        fired = [u["activation"] for u in doc["top_units"]]
        assert fired == sorted(fired, reverse=True) and fired[0] == pytest.approx(max(doc["activations"][0]), abs=1e-3)


def test_model_facts(ckpt_path) -> None:
    facts = _client(ckpt_path).get("/api/model").json()
    assert facts["layer_sizes"] == [784, 128, 10] and facts["dataset"] == "mnist-sample"
    assert facts["name"] == "quickstart" and 0.5 < facts["test_accuracy"] <= 1 and len(facts["classes"]) == 10


def test_the_page_and_its_files_are_served_from_the_package(ckpt_path) -> None:
    client = _client(ckpt_path)
    page = client.get("/")
    assert page.status_code == 200 and 'id="pad"' in page.text and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from the internet: no CDN
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_bad_uploads_get_the_cli_message_and_the_server_keeps_serving(ckpt_path, pictures, tmp_path) -> None:
    client = _client(ckpt_path)
    text = tmp_path / "notes.png"
    text.write_bytes(b"this is not a picture")
    status, doc = _post(client, text)
    cli = CliRunner().invoke(cli_app, ["predict", str(text), "-c", str(ckpt_path)])
    assert (
        status == 422
        and doc["error"] == "notes.png: not an image mlpcli reads (PNG, JPEG, BMP, GIF, TIFF, WebP, PGM/PPM/PBM)"
    )
    assert doc["error"].removeprefix("notes.png") in cli.stderr
    status, doc = _post(client, text, b"")
    assert status == 422 and "the file is empty" in doc["error"]
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    status, doc = _post(client, blank)
    assert status == 422 and doc["error"].startswith("blank.png: ")
    bomb = tmp_path / "bomb.png"
    Image.new("L", (9000, 9000), 255).save(bomb)  # a few kilobytes that would decode to 81 million pixels
    status, doc = _post(client, bomb)
    assert status == 422 and doc["error"] == "bomb.png: too large (16,000,000 pixels at most)"
    status, doc = _post(client, text, b"\0" * (MAX_UPLOAD + 10))
    assert status == 413 and "larger than" in doc["error"]
    response = client.post("/api/predict", files={"picture": ("a.png", b"x")})
    assert response.status_code == 422 and "'image'" in response.json()["error"]
    assert _post(client, pictures[0])[0] == 200  # still serving


@pytest.fixture
def live_server(ckpt_path):  # noqa: ANN201
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ckpt_path), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def test_concurrent_requests_on_a_real_server(live_server, pictures) -> None:
    import httpx

    def one(path: Path) -> tuple[int, int]:
        r = httpx.post(f"{live_server}/api/predict", files={"image": (path.name, path.read_bytes())}, timeout=None)
        return r.status_code, r.json()["prediction"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, pictures * 4))
    assert all(status == 200 for status, _ in results)
    per_file = {}
    for path, (_, prediction) in zip(pictures * 4, results):
        per_file.setdefault(path, set()).add(prediction)
    assert all(len(p) == 1 for p in per_file.values())  # the same answer every time, under concurrency


def test_draw_a_digit_in_a_real_browser(live_server, tmp_path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    try:
        browser.get(live_server + "/")
        WebDriverWait(browser, 60).until(lambda b: "784-128-10" in b.find_element(By.ID, "model").text)
        pad = browser.find_element(By.ID, "pad")
        # a "1": one stroke down the middle (offsets are from the canvas's center)
        actions = ActionChains(browser).move_to_element_with_offset(pad, 8, -95).click_and_hold()
        for step in range(1, 20):
            actions.move_by_offset(-1 if step % 4 == 0 else 0, 10)
        actions.release().perform()
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "prediction").text != "?")
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars li")
        probs = [float(li.get_attribute("data-p")) for li in bars]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-3
        shown = browser.find_element(By.ID, "prediction").text
        assert shown == "1" and int(np.argmax(probs)) == 1
        assert "top" in bars[1].get_attribute("class")
        track = bars[1].find_element(By.CSS_SELECTOR, ".track").size["width"]
        WebDriverWait(browser, 10).until(  # the bar is drawn at its probability's length (after its transition)
            lambda b: bars[1].find_element(By.CSS_SELECTOR, ".bar").size["width"] >= 0.9 * probs[1] * track
        )
        assert len(browser.find_elements(By.CSS_SELECTOR, "#layers .cell")) == 128
        assert len(browser.find_elements(By.CSS_SELECTOR, "#units canvas")) == 6
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))
        if os.environ.get("MLPCLI_SCREENSHOT"):  # how docs/serve.png is made
            browser.save_screenshot(os.environ["MLPCLI_SCREENSHOT"])
        assert (ARTIFACTS / "serve-page.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        browser.quit()


def test_serve_without_the_extra_is_one_line(ckpt_path, monkeypatch) -> None:
    import mlpcli.serve.app

    monkeypatch.setattr(mlpcli.serve.app, "fastapi", None)  # as when `import fastapi` failed
    result = CliRunner().invoke(cli_app, ["serve", str(ckpt_path)])
    assert result.exit_code == 1 and "[serve]'" in result.stderr and "pip install" in result.stderr


def test_bytes_of_an_upload_are_read_like_a_file(ckpt_path, pictures) -> None:
    from mlpcli.inference.pictures import prepare_image

    data = pictures[1].read_bytes()
    np.testing.assert_array_equal(prepare_image(io.BytesIO(data), name="x"), prepare_image(pictures[1]))
    assert checkpoint.load(ckpt_path).layer_sizes == [784, 128, 10]
