"""The drawing page's server: the page, the model's facts, and predictions with the activations behind them.

GET  /             the page (HTML, CSS, JavaScript shipped in the package; nothing from the internet)
GET  /favicon.ico  the page's icon
GET  /api/model    the checkpoint's name, dataset, architecture, classes, test accuracy
POST /api/predict  multipart field `image` -> one element of `mlpcli predict --json`, plus the 28x28 the
                   network saw, every hidden layer's activations and the first-layer units that fired most

Every error is {"error": "..."} with a 4xx status (5xx only for a server fault). Limits: uploads
of MAX_UPLOAD bytes (counted as they arrive), pictures of MAX_UPLOAD_PIXELS (refused before they are
decoded), MAX_PREDICTIONS decoded at once (others wait up to QUEUE_WAIT seconds, then 503); hosts and
origins as mlpcli.serve.guard says.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.errors import CheckpointError, ImageError, MissingExtra, MlpcliError
from mlpcli.inference.pictures import prepare_image
from mlpcli.inference.predictor import Predictor
from mlpcli.lecture.trace import architecture
from mlpcli.serve.guard import Guard

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 8 * 1024 * 1024  # bytes; a phone photo fits, a mistake does not
MAX_UPLOAD_PIXELS = 16_000_000  # a 12-megapixel photo fits; a small file that decodes to gigabytes does not
MAX_PREDICTIONS = 2  # pictures decoded at once: memory stays bounded under load
QUEUE_WAIT = 30.0  # seconds an upload may wait for its turn
TOP_UNITS = 6


try:  # the optional serve extra; FastAPI reads the endpoint's annotations from this module's globals
    import fastapi
    from fastapi import File, UploadFile
except ImportError:
    fastapi = None  # type: ignore[assignment]


def _import_fastapi() -> Any:
    if fastapi is None:
        raise MissingExtra("serve needs FastAPI and uvicorn", "serve")
    return fastapi


class Explainer:
    """A predictor that shows its work: the model's facts, and predictions with the activations behind them."""

    def __init__(self, path: Path) -> None:
        """CheckpointError unless path is a model of 28x28 pictures (the page draws digits)."""
        self.path = path
        self.predictor = Predictor.load(path)
        inputs = self.predictor.checkpoint.layer_sizes[0]
        if inputs != 784:
            trained_on = self.predictor.checkpoint.meta.get("dataset") or "other data"
            raise CheckpointError(
                f"{path}: a model of {inputs} inputs ({trained_on}), not of 28x28 pictures: the drawing page needs "
                "a digits model; open this one in mlpcli playground (its 'open' button)"
            )

    def facts(self) -> dict[str, Any]:
        """What the page shows about the model."""
        ckpt = self.predictor.checkpoint
        meta = ckpt.meta
        metrics = meta.get("metrics") or {}
        arch = architecture(ckpt.layer_sizes, meta["activation"], meta["output"])
        return {
            "checkpoint": str(self.path),
            "name": (meta.get("config") or {}).get("name") or self.path.parent.name,
            "dataset": meta.get("dataset"),
            "layer_sizes": ckpt.layer_sizes,
            "activation": meta["activation"],
            "output": meta["output"],
            "classes": self.predictor.classes,
            "parameters": arch["parameters"],
            "test_accuracy": metrics.get("test_accuracy"),
            "epoch": meta.get("epoch"),
        }

    def predict(self, data: bytes, name: str) -> dict[str, Any]:
        """One element of `mlpcli predict --json`, plus image, activations and top_units."""
        if not data:
            raise ImageError(f"{name}: the file is empty")
        p = self.predictor
        if p.side is None:
            raise ImageError(f"the model takes {p.inputs} inputs, not a square picture")
        # the same preprocessing as `mlpcli predict`; an upload may not decode to more than MAX_UPLOAD_PIXELS
        image = prepare_image(io.BytesIO(data), name=name, max_pixels=MAX_UPLOAD_PIXELS)
        acts = p.activations(image)
        doc = p.prediction(name, image, acts[-1]).element()
        doc["image"] = np.round(image, 4).tolist()
        doc["activations"] = [np.round(a, 4).tolist() for a in acts[:-1]]
        if len(acts) > 1:
            first, W1 = acts[0], p.model.params["W1"]
            top = np.argsort(-first, kind="stable")[:TOP_UNITS]
            doc["top_units"] = [
                {
                    "unit": int(j),
                    "activation": float(first[j]),
                    "template": np.round(W1[:, j] / max(float(np.abs(W1[:, j]).max()), 1e-12), 3)
                    .reshape(p.side, p.side)
                    .tolist(),
                }
                for j in top
            ]
        return doc


def create_app(path: Path, hosts: tuple[str, ...] = (), origins: tuple[str, ...] = ()) -> Any:
    """The ASGI application serving one checkpoint: FastAPI behind the Guard.

    hosts: names the server answers for besides 127.0.0.1, localhost and ::1 (e.g. its --host);
    origins: other pages allowed to POST (mlpcli serve --allow-origin; "*" for any).
    """
    fastapi = _import_fastapi()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    explainer = Explainer(path)
    turns = threading.BoundedSemaphore(MAX_PREDICTIONS)
    app = fastapi.FastAPI(title="mlpcli", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: Any) -> Any:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, exc: Any) -> Any:
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if where == "image":
            return JSONResponse({"error": "send the picture as a file in the multipart field 'image'"}, status_code=422)
        return JSONResponse({"error": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/")
    def page() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        return explainer.facts()

    @app.post("/api/predict")
    def predict(image: list[UploadFile] | None = File(None)) -> Any:  # noqa: B008 - FastAPI's way of declaring it
        if not image:
            return JSONResponse({"error": "send the picture as the multipart form field 'image'"}, status_code=422)
        if len(image) > 1:
            return JSONResponse({"error": f"send one picture per request (got {len(image)})"}, status_code=422)
        image = image[0]
        name = image.filename or "upload"
        data = image.file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return JSONResponse({"error": f"{name}: larger than {MAX_UPLOAD // 2**20} MiB"}, status_code=413)
        if not turns.acquire(timeout=QUEUE_WAIT):
            return JSONResponse({"error": "the server is busy; try again in a moment"}, status_code=503)
        try:
            return explainer.predict(data, name)
        except MlpcliError as exc:  # the same one line the CLI prints
            return JSONResponse({"error": str(exc)}, status_code=422)
        finally:
            turns.release()

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return Guard(app, MAX_UPLOAD + 64 * 1024, hosts, origins)
