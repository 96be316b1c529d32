"""mlpcli: multi-layer perceptrons on MNIST-style digits, from scratch in NumPy."""

__version__ = "0.1.0"
