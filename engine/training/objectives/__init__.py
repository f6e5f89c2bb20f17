"""What an optimizer step computes, one module per training method.

The loop (engine/training/train.py) owns steps, out-of-memory recovery, evaluation
cadence, checkpoints and reporting for every method; an objective only turns the step's
examples into micro-batches, runs their forward and backward passes, and evaluates.
Its step and evaluation metrics beside the loss (a preference accuracy, a mean reward)
go to metrics.jsonl and the window's plots like the loss does.
"""

from __future__ import annotations

from ...errors import ConfigError
from .base import Objective
from .preference import PreferenceObjective
from .sft import SupervisedObjective


def make(trainer) -> Objective:
    """The objective for the run's method (config.MethodConfig.name)."""
    name = trainer.cfg.method.name
    if name == "sft":
        return SupervisedObjective(trainer)
    if name in ("dpo", "orpo"):
        return PreferenceObjective(trainer, name)
    raise ConfigError(f"the {name.upper()} method is not available in this version of TuneDesk")


__all__ = ["Objective", "make"]
