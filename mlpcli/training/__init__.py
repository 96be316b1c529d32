"""Training: the service that runs a config into a run folder, the epoch loop, threads and shards, the preview."""
