"""The live playground: binary frames over a WebSocket, a server that never blocks, the presets' claims, the
registry's rules for dead and saturated units, and hostile requests (each a 4xx {"error": ...})."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import free_port
from helpers import invoke

from mlpcli.nn.activations import ACTIVATIONS

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from mlpcli.serve.playground import frames  # noqa: E402
from mlpcli.serve.playground.app import create_app  # noqa: E402
from mlpcli.serve.playground.presets import PRESETS  # noqa: E402
from mlpcli.serve.playground.sessions import Sessions  # noqa: E402

WS = "ws://127.0.0.1:8001"


def _client(sessions: Sessions | None = None) -> TestClient:
    return TestClient(create_app(sessions=sessions), base_url="http://127.0.0.1:8001")


def _next_frame(ws) -> tuple[dict, np.ndarray, bytes]:
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            return frames.decode(message["bytes"])


# ---- live frames ------------------------------------------------------------------------------------------


def test_a_live_page_gets_binary_frames_while_it_plays_and_none_it_did_not_ack() -> None:
    client = _client()
    config = {"data": {"dataset": "spiral"}, "model": {"hidden": [8, 8, 8]}, "optimizer": {"name": "sgd", "lr": 0.03}}
    sid = client.post("/api/sessions", json=config).json()["id"]
    with client.websocket_connect(f"{WS}/api/sessions/{sid}/live") as ws:
        header, params, maps = _next_frame(ws)
        assert header["step"] == 0 and header["layer_sizes"] == [2, 8, 8, 8, 2]
        assert params.dtype == np.float32 and params.size == 2 * 8 + 8 + 2 * (8 * 8 + 8) + 8 * 2 + 2
        g, m = header["grid"], header["map"]
        assert len(maps) == 2 * g * g + 24 * m * m  # winner, confidence, every hidden unit's map
        assert set(np.frombuffer(maps[: g * g], np.uint8)) <= {0, 1}
        ws.send_text(json.dumps({"speed": 5}))
        ws.send_text(json.dumps({"play": True}))
        assert json.loads(ws.receive_text()) == {"playing": True, "error": None}
        ws.send_text(json.dumps({"ack": 1}))
        steps = [_next_frame(ws)[0]["step"] for _ in range(2)]
        assert 0 < steps[0] < steps[1]  # it trains while playing (how many steps a frame depends on the clock)
        # two frames unacknowledged: the worker makes no third until the page says it painted them
        ws.send_text(json.dumps({"play": False}))
        assert json.loads(ws.receive_text())["playing"] is False
        ws.send_text(json.dumps({"focus": [2, 3]}))
        ws.send_text(json.dumps({"ack": 2}))
        header, _, maps = _next_frame(ws)
        assert header["focus"] == [2, 3] and len(maps) == 3 * g * g + 24 * m * m
        ws.send_text(json.dumps({"ack": 1}))
        ws.send_text(json.dumps({"weight": {"layer": 1, "i": 0, "j": 0, "value": 1.5}}))
        header, params, _ = _next_frame(ws)
        assert params[0] == np.float32(1.5)
        ws.send_text(json.dumps({"ack": 1}))
        ws.send_text(json.dumps({"step": 3}))
        assert _next_frame(ws)[0]["step"] == header["step"] + 3


def test_a_frame_is_the_sessions_state() -> None:
    client = _client()
    sid = client.post("/api/sessions", json={"data": {"dataset": "blobs", "classes": 3}}).json()["id"]
    doc = client.post(f"/api/sessions/{sid}/step", json={"steps": 200}).json()
    with client.websocket_connect(f"{WS}/api/sessions/{sid}/live") as ws:
        header, params, maps = _next_frame(ws)
    assert header["step"] == 200 and header["test_accuracy"] == doc["test_accuracy"]
    assert header["classes"] == 3 and header["dead"] == doc["dead"]
    g = header["grid"]
    winners = np.frombuffer(maps[: g * g], np.uint8)
    assert set(winners) <= {0, 1, 2} and len(set(winners)) == 3  # three blobs, three regions
    checkpoint_w1 = params[: 2 * header["layer_sizes"][1]]
    assert np.all(np.isfinite(checkpoint_w1))


def test_the_server_answers_pages_while_sessions_train() -> None:
    import httpx
    import uvicorn

    port = free_port()
    store = Sessions()
    server = uvicorn.Server(uvicorn.Config(create_app(sessions=store), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        big = {"model": {"hidden": [32, 32, 32, 32]}, "data": {"points": 2000}}
        ids = [httpx.post(f"{base}/api/sessions", json=big).json()["id"] for _ in range(2)]
        answers: list = []
        steppers = [
            threading.Thread(
                target=lambda sid=sid: answers.append(
                    httpx.post(f"{base}/api/sessions/{sid}/step", json={"steps": 5000}, timeout=600)
                )
            )
            for sid in ids
        ]
        for t in steppers:
            t.start()
        while not all(store.items[sid].lock.locked() for sid in ids):
            time.sleep(0.001)
        page = httpx.get(f"{base}/", timeout=600)
        still_training = [store.items[sid].lock.locked() for sid in ids]
        for t in steppers:
            t.join()
        assert page.status_code == 200 and "playground" in page.text
        assert any(still_training)  # the page was answered while both sessions trained
        assert [a.json()["step"] for a in answers] == [5000, 5000]
    finally:
        server.should_exit = True
        thread.join()


def test_closing_a_session_ends_its_worker() -> None:
    store = Sessions()
    client = _client(store)
    sid = client.post("/api/sessions", json={}).json()["id"]
    with client.websocket_connect(f"{WS}/api/sessions/{sid}/live") as ws:
        _next_frame(ws)
        ws.send_text(json.dumps({"play": True}))
        worker = store.items[sid].live[0]
        client.delete(f"/api/sessions/{sid}")
        worker.thread.join(timeout=30)
        assert not worker.thread.is_alive()


# ---- the registry's rules ---------------------------------------------------------------------------------


def test_dead_and_saturated_follow_the_derivative() -> None:
    z = np.array([[-3.0, 2.0, -1.0], [-2.0, -1.0, -5.0], [-0.5, 3.0, -0.1]])
    for name, spec in ACTIVATIONS.items():
        slopes = spec.bind().grad(z, spec.bind().fn(z))
        dead = spec.dead(slopes)
        if name == "relu":  # units 0 and 2 have a negative input on every point
            assert dead.tolist() == [True, False, True]
        else:  # leaky ReLU, GELU, SiLU, tanh, sigmoid, linear: their gradient is never zero everywhere
            assert not dead.any(), name
    big = np.array([[9.0, 0.1], [-9.0, 0.2], [8.0, 9.0]])
    for name in ("sigmoid", "tanh"):
        spec = ACTIVATIONS[name]
        slopes = spec.bind().grad(big, spec.bind().fn(big))
        assert spec.saturated(slopes).tolist() == [True, False], name
    for name in ("relu", "leaky_relu", "gelu", "silu", "linear"):
        spec = ACTIVATIONS[name]
        assert not spec.saturated(spec.bind().grad(big, spec.bind().fn(big))).any(), name


# ---- the presets' claims, within 3,000 steps (2 s at the page's default speed) -------------------------------


def _run(client: TestClient, config: dict, steps: int, every: int) -> list[dict]:
    sid = client.post("/api/sessions", json=config).json()["id"]
    rows = []
    for _ in range(steps // every):
        rows.append(client.post(f"/api/sessions/{sid}/step", json={"steps": every}).json())
    with client.websocket_connect(f"{WS}/api/sessions/{sid}/live") as ws:
        rows[-1]["deltas"] = _next_frame(ws)[0]["deltas"]
    return rows


def _preset(pid: str) -> dict:
    return next(p for p in PRESETS if p["id"] == pid)["config"]


def test_presets_have_ids_claims_and_valid_configs() -> None:
    client = _client()
    listed = client.get("/api/datasets").json()["presets"]
    assert [p["id"] for p in listed] == [p["id"] for p in PRESETS] and len({p["id"] for p in listed}) == len(listed)
    for p in listed:
        assert p["watch"].endswith(".") and client.post("/api/sessions", json=p["config"]).status_code == 200


def test_preset_a_linear_network_cannot_bend() -> None:
    client = _client()
    linear = _run(client, _preset("linear-cannot-bend"), 3000, 1000)
    bent = _run(
        client, {**_preset("linear-cannot-bend"), "model": {"hidden": [4, 4], "activation": "tanh"}}, 3000, 1000
    )
    assert max(r["test_accuracy"] for r in linear) < 0.65 and bent[-1]["test_accuracy"] > 0.95


def test_presets_sigmoid_mse_learns_slowly_and_relu_ce_fast() -> None:
    client = _client()
    slow = _run(client, _preset("sigmoid-mse-slow"), 3000, 1000)
    fast = _run(client, _preset("relu-ce-fast"), 3000, 1000)
    assert fast[0]["test_accuracy"] > 0.95 and slow[-1]["test_accuracy"] < 0.8
    deltas = slow[-1]["deltas"]  # the delta through the sigmoid is at most a quarter of o - t
    assert deltas["sigmoid_mse"] <= 0.25 * deltas["cross_entropy"] + 1e-9


def test_preset_saturation_shows_saturated_units_and_a_vanishing_delta() -> None:
    rows = _run(_client(), _preset("saturation"), 3000, 500)
    assert rows[0]["saturated"][0] > 0.2 and rows[-1]["saturated"][0] >= 0.5
    deltas = rows[-1]["deltas"]
    assert deltas["sigmoid_mse"] < 0.05 * deltas["cross_entropy"]


def test_preset_a_large_rate_kills_relus_but_not_leaky_ones() -> None:
    client = _client()
    relu = _run(client, _preset("dead-relu"), 3000, 500)
    assert relu[-1]["dead"][-1] >= 0.5 and relu[0]["dead"] != relu[-1]["dead"]  # the count climbs
    leaky = _run(client, {**_preset("dead-relu"), "model": {"hidden": [16, 16], "activation": "leaky_relu"}}, 1000, 500)
    assert all(d == 0.0 for r in leaky for d in r["dead"])


def test_preset_more_neurons_fit_the_spiral() -> None:
    client = _client()
    many = _run(client, _preset("more-neurons"), 3000, 500)
    few = _run(client, {**_preset("more-neurons"), "model": {"hidden": [4, 4], "activation": "tanh"}}, 3000, 500)
    assert max(r["test_accuracy"] for r in many) >= 0.95 and few[-1]["test_accuracy"] < 0.85


def test_preset_overfitting_turns_the_test_loss_up() -> None:
    rows = _run(_client(), _preset("overfitting"), 3000, 250)
    best = min(r["test_loss"] for r in rows)
    assert rows[-1]["train_loss"] < 0.01 and rows[-1]["test_loss"] > 1.5 * best
    assert rows[-1]["test_loss"] > rows[len(rows) // 2]["test_loss"]  # and it keeps climbing


# ---- hostile requests: a 4xx {"error": ...} naming the problem ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested"),
        ('{"data": 5}', "data"),
        ('{"data": {"dataset": "mnist-sample"}, "model": 7}', "model"),
        (json.dumps({"points": {"xy": [[0, 0], [1, 1]], "label": [0, 2**70]}}), "labels"),
        (json.dumps({"points": {"xy": [[0, 0], [1, 1]], "label": [0, 1.5]}}), "labels"),
        (json.dumps({"points": {"xy": [[0, 1e39], [1, 1]], "label": [0, 1]}}), "float32"),
        ('{"optimizer": {"lr": 1e999}}', "optimizer.lr"),
        ('{"optimizer": {"lr": 1e300}}', "optimizer.lr"),
        ('{"optimizer": {"lr": true}}', "optimizer.lr"),
        ('{"data": {"noise": NaN}}', "NaN"),
        (json.dumps({"data": {"features": ["x1"] * 100_000}}), "data.features"),
        (json.dumps({"data": {"features": ["x1", "x2", "x1"]}}), "data.features"),
        (json.dumps({"seed": 2**70}), "seed"),
        (json.dumps({"model": {"hidden": [True, 4]}}), "model.hidden"),
        ("not json", "JSON"),
    ],
)
def test_a_hostile_config_is_a_4xx_naming_it(body: str, says: str) -> None:
    response = _client().post("/api/sessions", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500 and says in response.json()["error"], response.text


@pytest.mark.parametrize(
    ("route", "body", "says"),
    [
        ("weight", {"layer": 1, "i": 0, "j": 0, "value": 1e308}, "float32"),
        ("weight", {"layer": 1, "i": True, "j": 0, "value": 1.0}, "whole"),
        ("weight", {"layer": 9, "i": 0, "j": 0, "value": 1.0}, "no weight"),
        ("rate", {"lr": 1e300}, "float32"),
        ("rate", {"lr": "fast"}, "lr"),
        ("step", {"steps": True}, "steps"),
        ("step", {"steps": 2**70}, "steps"),
    ],
)
def test_hostile_session_requests_are_refused(route: str, body: dict, says: str) -> None:
    client = _client()
    sid = client.post("/api/sessions", json={}).json()["id"]
    response = client.post(f"/api/sessions/{sid}/{route}", json=body)
    assert 400 <= response.status_code < 500 and says in response.json()["error"], response.text


def test_the_websocket_passes_the_same_host_and_origin_checks() -> None:
    client = _client()
    sid = client.post("/api/sessions", json={}).json()["id"]
    for headers, url in (
        ({"origin": "http://evil.example"}, f"{WS}/api/sessions/{sid}/live"),
        ({}, f"ws://evil.example/api/sessions/{sid}/live"),
    ):
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect(url, headers=headers) as ws:
                ws.receive()
        assert refused.value.code == 1008
    with client.websocket_connect(f"{WS}/api/sessions/{sid}/live", headers={"origin": "http://127.0.0.1:8001"}) as ws:
        _next_frame(ws)


def test_websocket_messages_are_bounded_in_size_kind_and_rate() -> None:
    client = _client()
    sid = client.post("/api/sessions", json={}).json()["id"]
    with client.websocket_connect(f"{WS}/api/sessions/{sid}/live") as ws:
        _next_frame(ws)

        def error_for(message: str) -> str:
            ws.send_text(message)
            while True:
                doc = ws.receive()
                if doc.get("text") and "error" in json.loads(doc["text"]):
                    return json.loads(doc["text"])["error"]

        assert "from 1 to" in error_for(json.dumps({"speed": 10**9}))
        assert "at most 4096 bytes" in error_for(json.dumps({"focus": "x" * 5000}))
        assert "unknown" in error_for(json.dumps({"shutdown": True}))
        assert "play" in error_for(json.dumps({"play": "yes"}))
        assert "JSON object" in error_for("[" * 50 + "]" * 50)
        assert "weight" in error_for(json.dumps({"weight": {"layer": 1, "i": 0, "j": 0, "value": 1e308}}))
        for _ in range(1000):  # a flood is cut off: the server closes the socket (1008)
            ws.send_text(json.dumps({"ack": 0}))
        while True:
            message = ws.receive()
            if message["type"] == "websocket.close":
                assert message["code"] == 1008
                break


def test_train_refuses_the_same_numbers(tmp_path) -> None:
    for override, says in (
        ("optimizer.lr=.inf", "optimizer.lr"),
        ("optimizer.lr=true", "optimizer.lr"),
        ("optimizer.lr=1e300", "float32"),
        ("data.noise=.nan", "data.noise"),
    ):
        result = invoke("train", "-c", "playground/xor", "--set", override, "--out", str(tmp_path / "r"))
        assert result.exit_code == 1 and says in result.output, result.output


def test_a_websocket_outlives_the_header_timeout(monkeypatch) -> None:
    """The server closes connections that send no request headers in time; an upgraded WebSocket is not one."""
    import asyncio

    import websockets

    from mlpcli.serve import server as serving

    monkeypatch.setattr(serving, "HEADER_TIMEOUT", 0.3)
    store = Sessions()
    sock = serving.bound_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app_server = serving.make_server(create_app(sessions=store))
    thread = threading.Thread(target=app_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not app_server.started:
        time.sleep(0.05)
    sid = store.create({}).id

    async def frames_over_a_second() -> int:
        count = 0
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/sessions/{sid}/live") as ws:
            await ws.send(json.dumps({"play": True}))
            end = time.monotonic() + 1.0  # more than three header timeouts
            while time.monotonic() < end:
                if isinstance(await ws.recv(), bytes):
                    count += 1
                    await ws.send(json.dumps({"ack": 1}))
        return count

    try:
        assert asyncio.run(frames_over_a_second()) > 0
    finally:
        app_server.should_exit = True
        thread.join()


def test_a_page_that_stops_painting_stops_training(monkeypatch) -> None:
    from mlpcli.serve.playground import live

    monkeypatch.setattr(live, "UNSEEN", 0.2)
    store = Sessions()
    client = _client(store)
    sid = client.post("/api/sessions", json={}).json()["id"]
    with client.websocket_connect(f"{WS}/api/sessions/{sid}/live") as ws:
        _next_frame(ws)
        ws.send_text(json.dumps({"play": True}))  # and never acknowledge a frame: a hidden or frozen page
        session = store.items[sid]
        while not (session.live[0].in_flight >= live.IN_FLIGHT and time.monotonic() - session.live[0].sent_at > 0.3):
            time.sleep(0.05)
        time.sleep(0.1)
        held = session.steps
        time.sleep(0.5)
        assert session.steps == held and held > 0  # it trained, then waited for the page
        ws.send_text(json.dumps({"ack": 5}))  # the page paints again: training goes on
        while session.steps == held:
            time.sleep(0.01)
