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
    if name == "grpo":
        from .grpo import GRPOObjective

        return GRPOObjective(trainer)
    if name in ("dpo", "orpo"):
        return PreferenceObjective(trainer, name)
    raise ConfigError(f"the {name.upper()} method is not available in this version of TuneDesk")


def method_data(cfg, data, tokenizer):
    """The prepared rows as the run's method reads them, before the plan is made: GRPO's
    prompts and reference answers (engine/data/prompts.py); the others' rows unchanged."""
    if cfg.method.name != "grpo":
        return data
    from ...data.prompts import to_prompts
    from ..rewards import needs_reference

    return to_prompts(data, tokenizer, need_reference=needs_reference(cfg.method.rewards), path=cfg.data.path)


__all__ = ["Objective", "make", "method_data"]
