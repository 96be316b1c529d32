"""Datasets: IDX parsing, sources and checksums, download and cache, preparation of arrays."""
