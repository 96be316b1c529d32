"""The playground's page in headless Chromium, as a learner meets it: links, presets, play, what is drawn, the
keyboard, opening files, the layout at 800x600 and 1920x1080 (screenshots in test-artifacts/)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import free_port
from helpers import chromium

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install '.[serve]'")

from mlpcli.serve.playground.app import create_app  # noqa: E402

ARTIFACTS = Path(os.environ.get("MLPCLI_SCREENSHOT_DIR") or Path(__file__).parent.parent / "test-artifacts")


@pytest.fixture(scope="module")
def page():
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    browser = chromium()
    try:
        yield browser, f"http://127.0.0.1:{port}"
    finally:
        browser.quit()
        server.should_exit = True
        thread.join()


def _open(b, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    b.get("about:blank")
    b.get(url)
    WebDriverWait(b, 60).until(lambda d: d.execute_script("return document.querySelectorAll('#network .node').length"))
    WebDriverWait(b, 60).until(lambda d: _step(d) == 0)


def _hash(doc: dict) -> str:
    return "#" + urllib.parse.quote(json.dumps(doc))


def _config(b) -> dict:
    return json.loads(urllib.parse.unquote(b.execute_script("return location.hash").lstrip("#")))


def _step(b) -> int:
    return int(b.execute_script("return document.getElementById('step').textContent"))


def _ink(b, canvas: str) -> str:
    """A fingerprint of a canvas's pixels (it changes when what is drawn changes)."""
    return b.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let h = 0, n = 0; for (let i = 0; i < d.length; i += 4) { h = (h * 31 + d[i] + d[i+1] * 7 + d[i+2] * 13"
        " + d[i+3]) % 1000000007; if (d[i+3]) n++; } return h + ':' + n;",
        canvas,
    )


def _wait(b, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(b, seconds, poll_frequency=0.05).until(condition)


def test_links_presets_and_play(page) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    b, base = page
    _open(b, f"{base}/?preset=more-neurons")  # a preset by its id
    assert _config(b)["model"]["hidden"] == [16, 16, 16] and "bend the boundary" in b.find_element(By.ID, "watch").text
    hashed = {"data": {"dataset": "circle"}, "model": {"hidden": [3], "activation": "relu"}}
    _open(b, f"{base}/?preset=more-neurons{_hash(hashed)}")  # the hash wins
    assert _config(b)["model"]["hidden"] == [3] and _config(b)["data"]["dataset"] == "circle"
    _open(b, f"{base}/{_hash({'model': {'hidden': [32, 8]}})}")  # every neuron is drawn
    assert len(b.find_elements(By.CSS_SELECTOR, "#network .node.unit")) == 40
    Select(b.find_element(By.ID, "preset")).select_by_value("more-neurons")
    _wait(b, lambda d: _config(d)["model"]["hidden"] == [16, 16, 16] and _step(d) == 0)
    before = _ink(b, "boundary")
    b.find_element(By.TAG_NAME, "body").send_keys(" ")  # space: play
    _wait(b, lambda d: _step(d) > 100 and "pause" in d.find_element(By.ID, "play").text)
    _wait(b, lambda d: float(d.find_element(By.ID, "test-acc").text.rstrip("%") or 0) >= 90, 120)
    assert _ink(b, "boundary") != before
    Select(b.find_element(By.ID, "batch")).select_by_value("20")  # a setting changes while it trains ...
    _wait(b, lambda d: _config(d)["train"]["batch_size"] == 20 and 0 < _step(d))
    steps = _step(b)
    _wait(b, lambda d: _step(d) > steps + 50)  # ... it goes on training, and the button says so
    assert "pause" in b.find_element(By.ID, "play").text
    b.find_element(By.TAG_NAME, "body").send_keys(" ")
    _wait(b, lambda d: "play" in d.find_element(By.ID, "play").text)
    time.sleep(0.3)  # a frame already on its way may still arrive
    stopped = _step(b)
    time.sleep(0.3)
    assert _step(b) == stopped
    names = b.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [n for n in names if "/null" in n or "/undefined" in n]


def test_reset_and_regenerate_draw_from_their_own_seeds(page) -> None:
    from selenium.webdriver.common.by import By

    b, base = page
    _open(b, f"{base}/{_hash({'data': {'dataset': 'moons'}})}")
    points = _ink(b, "points-layer")
    b.find_element(By.ID, "reset").click()  # new weights, the same points
    _wait(b, lambda d: "seed" in _config(d) and _step(d) == 0)
    seed = _config(b)["seed"]
    time.sleep(0.3)
    assert _ink(b, "points-layer") == points
    b.find_element(By.ID, "regen").click()  # new points, the same weights' seed
    _wait(
        b, lambda d: d.execute_script("return location.hash").find("%22seed%22") != -1 and "seed" in _config(d)["data"]
    )
    _wait(b, lambda d: _ink(d, "points-layer") != points)
    assert _config(b)["seed"] == seed
    shown = _ink(b, "points-layer")
    b.find_element(By.ID, "showtest").click()  # hide the test points
    _wait(b, lambda d: _ink(d, "points-layer") != shown)
    b.find_element(By.ID, "showtest").click()
    _wait(b, lambda d: _ink(d, "points-layer") == shown)
    boundary = _ink(b, "boundary")
    b.find_element(By.ID, "discrete").click()
    _wait(b, lambda d: _ink(d, "boundary") != boundary)


def test_an_error_clears_on_the_next_good_run_and_digits_leave_the_preset(page) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    b, base = page
    diverges = {"model": {"hidden": [8, 8], "activation": "linear"}, "optimizer": {"name": "sgd", "lr": 10}}
    _open(b, f"{base}/{_hash(diverges)}")
    b.find_element(By.ID, "play").click()
    _wait(b, lambda d: d.find_element(By.ID, "error").is_displayed() and "nan" in d.find_element(By.ID, "error").text)
    assert "play" in b.find_element(By.ID, "play").text
    Select(b.find_element(By.ID, "lr")).select_by_value("0.01")
    b.find_element(By.ID, "reset").click()
    _wait(b, lambda d: not d.find_element(By.ID, "error").is_displayed())
    # play once the new session is there (a click while it is being made finds no session: click again)
    _wait(b, lambda d: "pause" in d.find_element(By.ID, "play").text or d.find_element(By.ID, "play").click())
    _wait(b, lambda d: _step(d) > 50)
    assert not b.find_element(By.ID, "error").is_displayed()
    Select(b.find_element(By.ID, "preset")).select_by_value("overfitting")
    _wait(b, lambda d: _config(d)["data"]["points"] == 60)
    b.find_element(By.CSS_SELECTOR, '#datasets button[data-name="mnist-sample"]').click()
    _wait(b, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#templates canvas")) == 32)
    assert b.find_element(By.ID, "preset").get_attribute("value") == "" and b.find_element(By.ID, "watch").text == ""
    b.find_element(By.ID, "stepbtn").click()
    _wait(b, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#testdigits div")) == 12)
    _wait(b, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#network .node.unit")) == 32)  # its own network drawn
    assert len(b.find_elements(By.CSS_SELECTOR, "#network .node[aria-label^='output']")) == 10


def test_regression_datasets_draw_the_outputs_value_and_switch_the_head(page) -> None:
    from selenium.webdriver.common.by import By

    b, base = page
    _open(b, f"{base}/")
    b.find_element(By.CSS_SELECTOR, '#datasets button[data-name="reg-gauss"]').click()  # TP's regression data
    _wait(b, lambda d: _config(d)["data"]["dataset"] == "reg-gauss" and _step(d) == 0)
    assert _config(b)["model"]["output"] == "linear" and _config(b)["loss"] == "mse"
    assert b.find_element(By.ID, "head").get_attribute("value") == "linear"
    _wait(b, lambda d: "within 0.1" in d.find_element(By.ID, "class-legend").text)
    assert not b.find_element(By.ID, "clickadd").is_displayed()  # points of one's own have classes
    assert b.find_element(By.CSS_SELECTOR, "#network .node[aria-label^='output'] + .label").text == "value"
    before = _ink(b, "boundary")
    b.find_element(By.ID, "play").click()
    _wait(b, lambda d: _step(d) > 500)
    assert _ink(b, "boundary") != before
    # the boundary is the output's value on the diverging scale: orange and blue both appear, no class colour
    colours = b.execute_script(
        "const c = document.getElementById('boundary'); const d = c.getContext('2d').getImageData(0, 0, c.width,"
        " c.height).data; let orange = 0, blue = 0; for (let i = 0; i < d.length; i += 4) {"
        " if (d[i] > d[i + 2] + 40) orange++; if (d[i + 2] > d[i] + 40) blue++; } return [orange, blue];"
    )
    b.save_screenshot(str(ARTIFACTS / "playground-regression.png"))
    assert colours[0] > 100 and colours[1] > 100, colours
    b.find_element(By.ID, "play").click()
    b.find_element(By.CSS_SELECTOR, '#datasets button[data-name="circle"]').click()  # back to classes
    _wait(b, lambda d: _config(d)["data"]["dataset"] == "circle" and _step(d) == 0)
    assert _config(b)["model"]["output"] == "softmax" and _config(b)["loss"] == "cross_entropy"
    _open(b, f"{base}/{_hash({'data': {'dataset': 'reg-plane'}})}")  # a link with the dataset alone
    assert b.find_element(By.ID, "head").get_attribute("value") == "linear"
    assert not b.find_element(By.ID, "error").is_displayed()


def test_a_csv_with_or_without_a_header_and_files_opened_back(page, tmp_path) -> None:
    import httpx
    from selenium.webdriver.common.by import By

    b, base = page
    rows = "".join(f"{x / 10:.2f},{(x * 7 % 13) / 5 - 1:.2f},{x % 2}\n" for x in range(40))
    for name, text in (("headed.csv", "x1,x2,label\n" + rows), ("bare.csv", rows)):
        _open(b, f"{base}/")
        (tmp_path / name).write_text(text)
        b.find_element(By.ID, "upload").send_keys(str(tmp_path / name))
        _wait(b, lambda d: d.find_element(By.ID, "pointscsv").is_displayed())
        href = b.find_element(By.ID, "pointscsv").get_attribute("href")
        _wait(
            b, lambda d, href=href: d.find_element(By.ID, "pointscsv").get_attribute("href") == href and _step(d) == 0
        )
        assert len(httpx.get(href).text.splitlines()) == 41, name  # every row kept: 40 points and the header
    xor = {"data": {"dataset": "xor"}, "model": {"hidden": [5, 3]}, "optimizer": {"name": "sgd", "lr": 0.3}}
    _open(b, f"{base}/{_hash(xor)}")
    yaml_text = httpx.get(b.find_element(By.ID, "export").get_attribute("href")).text
    (tmp_path / "exported.yaml").write_text(yaml_text)
    b.find_element(By.ID, "stepbtn").click()
    _wait(b, lambda d: _step(d) == 1)
    (tmp_path / "model.npz").write_bytes(httpx.get(b.find_element(By.ID, "save").get_attribute("href")).content)
    _open(b, f"{base}/")
    b.find_element(By.ID, "open").send_keys(str(tmp_path / "exported.yaml"))  # a YAML opens its configuration
    _wait(b, lambda d: _config(d)["model"]["hidden"] == [5, 3] and _config(d)["data"]["dataset"] == "xor")
    assert _config(b)["optimizer"] == {**_config(b)["optimizer"], "name": "sgd", "lr": 0.3}
    _open(b, f"{base}/")
    b.find_element(By.ID, "open").send_keys(str(tmp_path / "model.npz"))  # a checkpoint opens with its weights
    _wait(b, lambda d: _config(d)["model"]["hidden"] == [5, 3])
    (tmp_path / "junk.yaml").write_text("{{{")
    b.find_element(By.ID, "open").send_keys(str(tmp_path / "junk.yaml"))
    _wait(b, lambda d: "junk.yaml" in d.find_element(By.ID, "error").text)


def test_the_keyboard_the_hover_and_inline_weights(page) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    b, base = page
    _open(b, f"{base}/{_hash({'model': {'hidden': [4, 3]}})}")
    nodes = b.find_elements(By.CSS_SELECTOR, "#network .node[tabindex='0']")
    assert len(nodes) == 4 + 3 + 2  # every neuron and output can be reached with Tab
    output = _ink(b, "boundary")
    ActionChains(b).move_to_element(nodes[1]).perform()  # a hovered neuron's map, large, in place of the output's
    _wait(b, lambda d: d.find_element(By.ID, "focus-label").is_displayed())
    _wait(b, lambda d: _ink(d, "boundary") != output)
    ActionChains(b).move_to_element(b.find_element(By.ID, "curves")).perform()
    _wait(b, lambda d: not d.find_element(By.ID, "focus-label").is_displayed())
    nodes[5].send_keys(Keys.ENTER)  # Enter on a neuron: edit its incoming weights inline (no prompt())
    field = b.find_element(By.ID, "weight-value")
    _wait(b, lambda d: d.find_element(By.ID, "weight-edit").is_displayed())
    field.clear()
    field.send_keys("2.5", Keys.ENTER)
    _wait(b, lambda d: not d.find_element(By.ID, "weight-edit").is_displayed())
    nodes[5].send_keys(Keys.ENTER)
    _wait(b, lambda d: d.find_element(By.ID, "weight-value").get_attribute("value") == "2.5000")
    b.find_element(By.ID, "weight-value").send_keys(Keys.ESCAPE)
    _wait(b, lambda d: not d.find_element(By.ID, "weight-edit").is_displayed())
    b.execute_script(  # a click on an edge (drawn on a canvas) opens that weight: W2 into neuron 1 from neuron 2
        "const e = net.edges.find((g) => g.layer === 2 && g.i === 2 && g.j === 1);"
        "const r = net.canvas.getBoundingClientRect();"
        "net.canvas.dispatchEvent(new MouseEvent('click', {clientX: r.left + (e.x1 + e.x2) / 2,"
        " clientY: r.top + (e.y1 + e.y2) / 2, bubbles: true}));"
    )
    _wait(b, lambda d: d.find_element(By.ID, "weight-edit").is_displayed())
    assert b.find_element(By.ID, "weight-name").text == "W2 into neuron 1"
    assert b.find_element(By.ID, "weight-from").get_attribute("value") == "2"


@pytest.mark.parametrize(("width", "height"), [(800, 600), (1920, 1080)])
def test_the_layout_at_small_and_large_screens(page, width: int, height: int) -> None:
    from selenium.webdriver.common.by import By

    b, base = page
    b.set_window_size(width, height)
    try:
        _open(b, f"{base}/?preset=more-neurons")
        b.find_element(By.ID, "play").click()
        _wait(b, lambda d: _step(d) > 200)
        b.find_element(By.ID, "play").click()
        assert b.execute_script("return document.documentElement.scrollWidth") <= b.execute_script(
            "return window.innerWidth"
        )  # nothing runs off the side
        for element in ("play", "boundary", "network", "test-acc"):
            box = b.find_element(By.ID, element).rect
            assert box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width, element
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        b.save_screenshot(str(ARTIFACTS / f"playground-{width}x{height}.png"))
        _open(b, f"{base}/?preset=more-neurons&hide=controls,data")  # embedded in a lecture: only the network
        assert not b.find_element(By.ID, "controls").is_displayed() and not b.find_element(By.ID, "data").is_displayed()
        assert b.find_element(By.ID, "boundary").is_displayed()
    finally:
        b.set_window_size(1280, 900)
