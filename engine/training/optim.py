"""The optimizer side of a step: AdamW (fp32 or bitsandbytes' 8-bit states), the
learning-rate schedule and fp16's loss scaler, kept together so the loop makes one call
per optimizer step and a checkpoint saves and restores them as one."""

from __future__ import annotations

import math
from typing import Any

import torch


def cosine_with_warmup(total: int, warmup: int):
    """LR multiplier per step: linear warmup, then cosine decay to zero after the last step.

    Step 0 already gets 1/(warmup+1) of the peak: a first step at lr 0 would be wasted.
    """

    def mult(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return mult


def make_optimizer(model, t, optimizer: str) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adamw_8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)


class Optimization:
    """Optimizer, schedule and scaler of one run."""

    def __init__(self, model, t, optimizer: str, fp16: bool) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.max_grad_norm = t.max_grad_norm
        self.optimizer = make_optimizer(model, t, optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)  # fp16 needs loss scaling; bf16 and fp32 do not
        self.scheduler = None

    def schedule(self, total_steps: int, warmup_ratio: float) -> None:
        """Set once the number of steps is known (after calibration)."""
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_with_warmup(total_steps, math.ceil(warmup_ratio * total_steps)))

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self) -> tuple[float, float]:
        """Clip, update, advance the schedule; returns (the step's lr, gradient norm)."""
        self.scaler.unscale_(self.optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.zero()
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        return lr, grad_norm

    def zero(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any], load_optimizer=None) -> None:
        """`load_optimizer(state)`: how the optimizer's part is loaded (a sharded run scatters it)."""
        (load_optimizer or self.optimizer.load_state_dict)(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
