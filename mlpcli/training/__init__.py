"""Training: the service that runs a config into a run folder, the epoch loop, its threads, the preview."""
