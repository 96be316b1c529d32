"""`mlpcli serve`: a page to draw a digit and watch the network think (FastAPI + uvicorn, optional extra)."""
