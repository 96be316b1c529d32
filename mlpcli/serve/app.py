"""The drawing page's server: the page, the model's facts, and predictions with the activations behind them.

GET  /             the page (HTML, CSS, JavaScript shipped in the package; nothing from the internet)
GET  /api/model    the checkpoint's name, dataset, architecture, classes, test accuracy
POST /api/predict  multipart field `image` -> one element of `mlpcli predict --json`, plus the 28x28 the
                   network saw, every hidden layer's activations and the first-layer units that fired most
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.errors import ImageError, MissingExtra, MlpcliError
from mlpcli.inference.pictures import prepare_image
from mlpcli.inference.predictor import Predictor
from mlpcli.lecture.trace import architecture

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 8 * 1024 * 1024  # bytes; a phone photo fits, a mistake does not
MAX_UPLOAD_PIXELS = 50_000_000  # a 12-megapixel photo fits; a small file that decodes to gigabytes does not
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
        self.path = path
        self.predictor = Predictor.load(path)

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


def create_app(path: Path) -> Any:
    """The FastAPI application serving one checkpoint."""
    fastapi = _import_fastapi()
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    explainer = Explainer(path)
    app = fastapi.FastAPI(title="mlpcli", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def cap_size(request: Any, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_UPLOAD + 4096):
            return JSONResponse({"error": f"the upload is larger than {MAX_UPLOAD // 2**20} MiB"}, status_code=413)
        return await call_next(request)

    @app.get("/")
    def page() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        return explainer.facts()

    @app.post("/api/predict")
    def predict(image: UploadFile | None = File(None)) -> Any:  # noqa: B008 - FastAPI's way of declaring it
        if image is None:
            return JSONResponse({"error": "send the picture as the multipart form field 'image'"}, status_code=422)
        name = image.filename or "upload"
        data = image.file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return JSONResponse({"error": f"{name}: larger than {MAX_UPLOAD // 2**20} MiB"}, status_code=413)
        try:
            return explainer.predict(data, name)
        except MlpcliError as exc:  # the same one line the CLI prints
            return JSONResponse({"error": str(exc)}, status_code=422)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
