"""Inference: a predictor built once from a checkpoint, metrics, pictures in MNIST form, exporters."""
