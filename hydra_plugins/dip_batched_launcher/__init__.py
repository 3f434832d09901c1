"""Hydra launcher that fits the runs of a sweep in batches (``launcher=batched``)."""
