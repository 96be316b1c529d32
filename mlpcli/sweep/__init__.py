"""Sweeps: many trials of one experiment, searched by Optuna, run locally or on a Ray cluster."""
