"""Early stopping on the validation loss, and which evaluation was the best.

The validation loss of a small set turns up once the adapter starts to memorize its
training rows (and, on a chat model, to forget what it knew): the run stops after
`patience` evaluations without a new best, and the adapter it delivers is the best
one, like HF's `EarlyStoppingCallback` with `load_best_model_at_end`. Its state rides in
every checkpoint, so a resumed run keeps counting where it stopped."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MIN_IMPROVEMENT = 0.0  # relative; any lower loss is a new best (as HF's EarlyStoppingCallback by default)


@dataclass
class BestKeeper:
    patience: int | None
    """Evaluations without a new best before the run stops; None: never stop early."""
    best_loss: float | None = None
    best_step: int | None = None
    since_best: int = 0
    stopped_early: bool = False

    def update(self, step: int, loss: float) -> bool:
        """Record an evaluation; True if it is a new best (its adapter is worth keeping)."""
        if self.best_loss is None or loss < self.best_loss * (1 - MIN_IMPROVEMENT):
            self.best_loss, self.best_step, self.since_best = loss, step, 0
            return True
        self.since_best += 1
        return False

    @property
    def should_stop(self) -> bool:
        if self.patience is not None and self.since_best >= self.patience:
            self.stopped_early = True
        return self.stopped_early

    def state(self) -> dict[str, Any]:
        return {"best": asdict(self)}

    def load(self, state: dict[str, Any]) -> None:
        saved = state.get("best") or {}
        for k in ("best_loss", "best_step", "since_best", "stopped_early"):
            if k in saved:
                setattr(self, k, saved[k])
