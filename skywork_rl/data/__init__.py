"""Rows and datasets: the canonical row schema, loading a stage's dataset, domain mixing, bad images."""
