"""mlpcli: multi-layer perceptrons on MNIST-style digits, from scratch in NumPy."""

from mlpcli.version import __version__

__all__ = ["EvalResult", "MlpcliError", "Model", "RunResult", "__version__", "evaluate", "load", "train"]


def __getattr__(name: str) -> object:
    """The Python API (mlpcli.train, mlpcli.load, mlpcli.evaluate, mlpcli.MlpcliError), imported when first used
    so that `mlpcli --help` stays fast."""
    if name in ("train", "load", "evaluate", "RunResult", "Model", "EvalResult"):
        from mlpcli import api

        return getattr(api, name)
    if name == "MlpcliError":
        from mlpcli.errors import MlpcliError

        return MlpcliError
    raise AttributeError(f"module 'mlpcli' has no attribute {name!r}")
