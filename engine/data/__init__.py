"""Dataset files -> conversations -> token ids with a trained-token mask."""

from .prepare import PreparedData, prepare  # noqa: F401
