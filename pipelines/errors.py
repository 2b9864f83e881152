"""Errors shared by the pipelines."""


class Reject(Exception):
    """An input that cannot be converted; `str(e)` is the reason recorded for it (never fatal to a build)."""
