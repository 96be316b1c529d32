"""The playground's server: the page, and training sessions behind a JSON API.

    GET    /                                  the page (static/, shipped in the package; nothing from the internet)
    GET    /api/datasets                      the datasets, features, activations, optimizers, presets
    GET    /api/preview?dataset=&noise=       a dataset's points, for the picker
    POST   /api/sessions                      a JSON config document (the YAML config's keys; "points":
                                              {"xy": [[x1, x2], ...], "label": [...]} for points of one's own)
                                              -> {"id": ...}
    POST   /api/sessions/{id}/step            {"steps": N} -> {"step", "epoch", "train_loss", "test_loss",
                                              "train_accuracy", "test_accuracy", "dead", "saturated"}
                                              (runs in a worker thread: other requests are answered meanwhile)
    WS     /api/sessions/{id}/live            the page's live training: binary frames out (frames.py),
                                              commands in (live.py)
    GET    /api/sessions/{id}/frame?grid=64   what the page draws (see Session.frame)
    GET    /api/sessions/{id}/points          the training and test points
    POST   /api/import                        a config (YAML) or a checkpoint (.npz) -> {"config": ..., "id": a
                                              session with the checkpoint's weights, or null for a config}
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

import asyncio
import json
from pathlib import Path
from typing import Any

from mlpcli.data.plane import DATASETS, FEATURES, REGRESSION
from mlpcli.errors import MissingExtra, MlpcliError
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.optimizers import OPTIMIZERS
from mlpcli.nn.schedules import SCHEDULES
from mlpcli.serve.guard import Guard
from mlpcli.serve.parse import parse_json
from mlpcli.serve.playground.live import Flooded, Live
from mlpcli.serve.playground.presets import PRESETS
from mlpcli.serve.playground.sessions import Sessions
from mlpcli.serve.playground.setup import DIGITS, LIMITS, imported, preview

try:  # the optional serve extra; FastAPI reads the endpoints' annotations from this module's globals
    from fastapi import Request, WebSocket
except ImportError:
    Request = WebSocket = Any  # type: ignore[misc,assignment]

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1024 * 1024  # a config document or a step request is small


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
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.websockets import WebSocketDisconnect

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
        return parse_json(await request.body() or b"{}")

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
            "datasets": [*DATASETS, *REGRESSION, DIGITS],
            "regression": list(REGRESSION),
            "features": list(FEATURES),
            "activations": list(ACTIVATIONS),
            "can_die": [name for name, spec in ACTIVATIONS.items() if spec.can_die],  # the registry's facts
            "saturates": [name for name, spec in ACTIVATIONS.items() if spec.grad_max is not None],
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

    @app.post("/api/import")
    async def import_file(request: Request) -> Any:
        try:
            data = await request.body()
            doc, params = await run_in_threadpool(imported, data)
            created = await run_in_threadpool(store.create, doc, params) if params is not None else None
        except MlpcliError as exc:
            return error(str(exc))
        return {"config": doc, "id": created.id if created else None}

    @app.post("/api/sessions/{sid}/step")
    async def step(sid: str, request: Request) -> Any:
        s = session(sid)
        try:
            doc = await body(request)
            steps = doc.get("steps", 1) if isinstance(doc, dict) else None
            if isinstance(steps, bool) or not isinstance(steps, int):
                raise MlpcliError("steps: a whole number of optimizer steps")

            def run() -> Any:
                with s.lock:
                    return s.step(steps)

            return await run_in_threadpool(run)  # the event loop answers other requests meanwhile
        except MlpcliError as exc:
            return error(str(exc))

    @app.websocket("/api/sessions/{sid}/live")
    async def live(websocket: WebSocket, sid: str) -> None:
        try:
            s = store.get(sid)
        except KeyError:
            await websocket.close(code=4404, reason="no such session (it may have expired)")
            return
        await websocket.accept()
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue = asyncio.Queue()
        worker = Live(s, lambda message: loop.call_soon_threadsafe(outbox.put_nowait, message))
        s.live.append(worker)

        async def sender() -> None:
            while True:
                message = await outbox.get()
                if isinstance(message, bytes):
                    await websocket.send_bytes(message)
                else:
                    await websocket.send_text(message)

        task = asyncio.create_task(sender())
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    await websocket.close(code=1003, reason="commands are JSON text")
                    break
                try:
                    await run_in_threadpool(worker.receive, text)
                except Flooded as exc:
                    await websocket.close(code=1008, reason=str(exc))
                    break
                except MlpcliError as exc:
                    await websocket.send_text(json.dumps({"error": str(exc)}))
        except WebSocketDisconnect:
            pass
        finally:
            task.cancel()
            await run_in_threadpool(worker.close)
            if worker in s.live:
                s.live.remove(worker)

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
            lr = doc.get("lr") if isinstance(doc, dict) else None
            if isinstance(lr, bool) or not isinstance(lr, (int, float)):
                raise MlpcliError('rate: {"lr": a number}')
            s.set_rate(float(lr))
        except MlpcliError as exc:
            return error(str(exc))
        return {"lr": s.optimizer.base_lr}

    @app.post("/api/sessions/{sid}/weight")
    async def weight(sid: str, request: Request) -> Any:
        s = session(sid)
        try:
            doc = await body(request)
            with s.lock:
                s.set_weight_doc(doc)
        except MlpcliError as exc:
            return error(str(exc))
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
