"""The playground's server: the page, and training sessions behind a JSON API.

    GET    /                                  the page (static/, shipped in the package; nothing from the internet)
    GET    /api/datasets                      the datasets, features, activations, optimizers, presets
    GET    /api/preview?dataset=&noise=       a dataset's points, for the picker
    POST   /api/sessions                      a JSON config document (the YAML config's keys; "points":
                                              {"xy": [[x1, x2], ...], "label": [...]} for points of one's own)
                                              -> {"id": ...}
    POST   /api/sessions/{id}/step            {"steps": N} -> {"step", "epoch", "train_loss", "test_loss",
                                              "train_accuracy", "test_accuracy"}
    GET    /api/sessions/{id}/frame?grid=64   what the page draws (see Session.frame)
    GET    /api/sessions/{id}/points          the training and test points
    POST   /api/sessions/{id}/rate            {"lr": x}: a new learning rate while it trains
    POST   /api/sessions/{id}/weight          {"layer", "i", "j", "value"}: edit one weight
    GET    /api/sessions/{id}/export          the config as YAML (points of the user's own: as points.csv)
    GET    /api/sessions/{id}/points.csv      the points as x1,x2,label rows
    GET    /api/sessions/{id}/checkpoint      the model as an mlpcli checkpoint (.npz)
    DELETE /api/sessions/{id}                 close it

Errors are {"error": ...} with a 4xx status, naming the config key when a config is wrong. It binds
127.0.0.1 and checks Host and Origin like `mlpcli serve` (the same Guard).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlpcli.data.plane import DATASETS, FEATURES
from mlpcli.errors import MissingExtra, MlpcliError
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.optimizers import OPTIMIZERS
from mlpcli.nn.schedules import SCHEDULES
from mlpcli.serve.guard import Guard
from mlpcli.serve.playground.sessions import DIGITS, LIMITS, Sessions, preview

try:  # the optional serve extra; FastAPI reads the endpoints' annotations from this module's globals
    from fastapi import Request
except ImportError:
    Request = Any  # type: ignore[misc,assignment]

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1024 * 1024  # a config document or a step request is small

# One click each, with what to watch (the lecture's claims).
PRESETS = [
    {
        "name": "A linear network cannot bend",
        "watch": "However many layers, a linear network is one linear map: its boundary stays a straight line "
        "and the circle is never separated. Switch the activation to tanh and it is.",
        "config": {"data": {"dataset": "circle", "noise": 0.0}, "model": {"hidden": [4, 4], "activation": "linear"}},
    },
    {
        "name": "Sigmoid + squared error learns slowly",
        "watch": "The output delta o(1 - o)(o - t) is small when a sigmoid saturates: compare the loss curve with the "
        "ReLU + cross-entropy preset on the same data.",
        "config": {
            "data": {"dataset": "xor", "noise": 0.0},
            "model": {"hidden": [8], "activation": "sigmoid", "output": "sigmoid"},
            "loss": "mse",
            "optimizer": {"name": "sgd", "lr": 0.1},
        },
    },
    {
        "name": "ReLU + cross-entropy learns fast",
        "watch": "The same data as the sigmoid preset: cross-entropy's delta (o - t) does not shrink, "
        "and ReLU does not saturate.",
        "config": {
            "data": {"dataset": "xor", "noise": 0.0},
            "model": {"hidden": [8], "activation": "relu"},
            "optimizer": {"name": "sgd", "lr": 0.1},
        },
    },
    {
        "name": "A large learning rate kills ReLUs",
        "watch": "Watch the dead-unit count climb: a big step pushes units where they never fire again. Try leaky_relu "
        "with the same rate: its units survive.",
        "config": {
            "data": {"dataset": "spiral"},
            "model": {"hidden": [16, 16], "activation": "relu"},
            "optimizer": {"name": "sgd", "lr": 1.0},
        },
    },
    {
        "name": "More neurons fit the spiral",
        "watch": "Three layers of 16 tanh units bend the boundary around both arms; with two of 4 they cannot.",
        "config": {"data": {"dataset": "spiral"}, "model": {"hidden": [16, 16, 16], "activation": "tanh"}},
    },
    {
        "name": "Overfitting",
        "watch": "Few noisy points and a big network: the training loss keeps falling while the test loss turns up.",
        "config": {
            "data": {"dataset": "gauss", "points": 60, "noise": 0.5},
            "model": {"hidden": [32, 32, 32], "activation": "relu"},
        },
    },
]


def _fastapi() -> Any:
    try:
        import fastapi
    except ImportError:
        raise MissingExtra("playground needs FastAPI and uvicorn", "serve") from None
    return fastapi


def create_app(hosts: tuple[str, ...] = (), origins: tuple[str, ...] = (), sessions: Sessions | None = None) -> Any:
    """The ASGI application of the playground (FastAPI behind the Guard)."""
    fastapi = _fastapi()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    store = sessions or Sessions()
    app = fastapi.FastAPI(title="mlpcli playground", docs_url=None, redoc_url=None, openapi_url=None)

    def error(message: str, status: int = 422) -> Any:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: Any) -> Any:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, exc: Any) -> Any:
        return error("the request is not what this route takes (a JSON object)")

    async def body(request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"{}")
        except ValueError:
            raise MlpcliError("the body must be JSON") from None

    def session(sid: str) -> Any:
        try:
            return store.get(sid)
        except KeyError:
            raise HTTPException(404, f"no session {sid[:40]} (it may have expired: create a new one)") from None

    @app.get("/")
    def page() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/api/datasets")
    def datasets() -> Any:
        return {
            "datasets": [*DATASETS, DIGITS],
            "features": list(FEATURES),
            "activations": list(ACTIVATIONS),
            "optimizers": list(OPTIMIZERS),
            "schedules": list(SCHEDULES),
            "limits": LIMITS,
            "presets": PRESETS,
        }

    @app.get("/api/preview")
    def points_preview(dataset: str = "spiral", noise: float = 0.0) -> Any:
        try:
            return preview(dataset, noise)
        except MlpcliError as exc:
            return error(str(exc))

    @app.post("/api/sessions")
    async def create(request: Request) -> Any:
        try:
            created = store.create(await body(request))
        except MlpcliError as exc:
            return error(str(exc))
        return {"id": created.id}

    @app.post("/api/sessions/{sid}/step")
    async def step(sid: str, request: Request) -> Any:
        s = session(sid)
        try:
            doc = await body(request)
            steps = doc.get("steps", 1) if isinstance(doc, dict) else None
            if isinstance(steps, bool) or not isinstance(steps, int):
                raise MlpcliError("steps: a whole number of optimizer steps")
            with s.lock:
                return s.step(steps)
        except MlpcliError as exc:
            return error(str(exc))

    @app.get("/api/sessions/{sid}/frame")
    def frame(sid: str, grid: int = 64) -> Any:
        s = session(sid)
        try:
            with s.lock:
                return s.frame(grid)
        except MlpcliError as exc:
            return error(str(exc))

    @app.get("/api/sessions/{sid}/points")
    def points(sid: str) -> Any:
        s = session(sid)
        if s.digits:
            return error("digits mode has no points in the plane")
        return s.points()

    @app.post("/api/sessions/{sid}/rate")
    async def rate(sid: str, request: Request) -> Any:
        s = session(sid)
        try:
            doc = await body(request)
            s.set_rate(float(doc.get("lr")) if isinstance(doc, dict) and doc.get("lr") is not None else -1.0)
        except (MlpcliError, TypeError, ValueError) as exc:
            return error(str(exc))
        return {"lr": s.optimizer.base_lr}

    @app.post("/api/sessions/{sid}/weight")
    async def weight(sid: str, request: Request) -> Any:
        s = session(sid)
        try:
            doc = await body(request)
            with s.lock:
                s.set_weight(int(doc["layer"]), int(doc["i"]), int(doc["j"]), float(doc["value"]))
        except (MlpcliError, KeyError, TypeError, ValueError) as exc:
            return error(f"weight: {exc}")
        return {"ok": True}

    @app.get("/api/sessions/{sid}/points.csv")
    def points_csv(sid: str) -> Any:
        s = session(sid)
        if s.digits:
            return error("digits mode has no points in the plane")
        headers = {"Content-Disposition": 'attachment; filename="points.csv"'}
        return Response(s.points_csv(), media_type="text/csv", headers=headers)

    @app.get("/api/sessions/{sid}/export")
    def export(sid: str) -> Any:
        text = session(sid).export_yaml()
        headers = {"Content-Disposition": 'attachment; filename="playground.yaml"'}
        return Response(text, media_type="application/yaml", headers=headers)

    @app.get("/api/sessions/{sid}/checkpoint")
    def checkpoint(sid: str) -> Any:
        s = session(sid)
        with s.lock:
            data = s.checkpoint()
        headers = {"Content-Disposition": 'attachment; filename="playground.npz"'}
        return Response(data, media_type="application/octet-stream", headers=headers)

    @app.delete("/api/sessions/{sid}")
    def close(sid: str) -> Any:
        store.close(sid)
        return {"ok": True}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return Guard(app, MAX_BODY, hosts, origins)
