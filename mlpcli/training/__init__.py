"""Training: the service that runs a config into a run folder, the epoch loop, BLAS threads, the preview."""
