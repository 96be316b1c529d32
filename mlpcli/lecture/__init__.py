"""The lecture's tools: trace, gradient checks, diagnostics, network files."""
