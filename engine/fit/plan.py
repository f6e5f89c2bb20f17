"""The resolved plan and the budgets it is made against.

`Plan` is frozen: what a run uses, saved in plan.json and each checkpoint; recovery makes
a new one (engine/fit/planner.py `recovered`). `Target` is the memory a plan may use:
the card less what the CUDA context and the desktop hold, less headroom for what the
estimate misses, and the RAM less the desktop's share.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .memory import GiB, StepShape

CONTEXT_RESERVE = 1 * GiB  # CUDA context + what the desktop holds, outside the allocator
SAFETY = 0.05  # of the rest: headroom for what the estimate misses
DESKTOP_RAM = 2 * GiB  # RAM left free for the desktop and the other programs, at least…
DESKTOP_RAM_SHARE = 0.10  # …or this share of the RAM, whichever is more
UNKNOWN_RAM = 8 * GiB  # RAM budget when psutil could not tell (a 16 GB PC's typical room)


@dataclass(frozen=True)
class Target:
    """What a run plans against: the device, its memory budget and the RAM it may use."""

    device: str  # "cuda" | "cpu"
    budget_bytes: int | None  # GPU bytes the plan may use (None on the CPU)
    cap_bytes: int | None  # what the allocator can really hand out: past it is out of memory
    ram_bytes: int  # RAM the run may use, the desktop's share kept free
    bf16: bool = True


@dataclass(frozen=True)
class Plan:
    """The resolved plan: every setting a run uses. Frozen: recovery makes a new one."""

    fits: bool
    device: str
    quantization: str
    micro_batch: int
    grad_accum: int
    effective_batch: int
    gradient_checkpointing: bool
    seq_len: int
    """The one length: the most tokens a row (or a packed row) holds in this run."""
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_targets: list[str] | str
    optimizer: str
    embeddings_on_cpu: bool
    lean_memory: bool
    long_rows: str
    """What happens to rows longer than seq_len: truncate (default) or skip."""
    bf16: bool
    budget_bytes: int
    cap_bytes: int
    ram_budget_bytes: int
    estimate_bytes: int
    ram_estimate_bytes: int
    breakdown: dict[str, int]
    reasons: dict[str, str] = field(default_factory=dict)
    suggestion: str = ""
    user_set: tuple[str, ...] = ()
    processes: int = 1
    """GPUs (one process each) the run is spread over: the figures above are per card."""
    sharded: bool = False
    """With processes > 1: the model is sharded over the cards (FSDP2: each holds 1/N of the
    weights and gathers one layer at a time; engine/fit/sharding.py), not copied whole to each."""
    lr: float = 2e-4
    epochs: float = 3.0
    eval_every: int = 10
    total_steps: int = 0
    """Optimizer steps the run makes (0: not sized yet); lr, epochs, eval_every and lora_r are
    sized to the data (engine/fit/schedule.py) unless the request set them."""
    data_warning: str = ""
    """A plain warning about the data's size (tiny files), shown with the plan."""
    fused_kernels: bool = False
    """liger's fused RMSNorm / SwiGLU / RoPE will run (CUDA, Triton and liger-kernel present):
    the activation terms are smaller (engine/fit/memory.py)."""
    method: str = "sft"
    """The training method (config.MethodConfig.name) the memory figures are for."""
    group: int = 1
    """GRPO: answers sampled per prompt; micro_batch counts prompts, each pass holds micro_batch x group sequences."""
    completion_tokens: int = 0
    """GRPO: the longest sampled answer; seq_len is the longest prompt plus this."""
    sequences: int = 1
    """Sequences per example the method runs (a DPO / ORPO pair: 2): the memory terms count them."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["user_set"] = tuple(values.get("user_set", ()))
        return cls(**values)

    def replace(self, **changes: Any) -> "Plan":
        if "micro_batch" in changes or "processes" in changes:  # the effective batch is kept
            changes.setdefault("grad_accum", accumulation(self.effective_batch, changes.get("micro_batch", self.micro_batch),
                                                          changes.get("processes", self.processes)))
        return dataclasses.replace(self, **changes)

    @property
    def examples_per_step(self) -> int:
        """Examples one optimizer step takes, over every process (at least the effective batch)."""
        return self.micro_batch * self.grad_accum * self.processes

    def shape(self) -> StepShape:
        return StepShape(self.quantization, 2 if self.device == "cuda" else 4, self.micro_batch, self.seq_len,
                         self.gradient_checkpointing, self.lora_r, self.lora_targets, self.optimizer,
                         self.embeddings_on_cpu, self.lean_memory, group=self.group, completion=self.completion_tokens,
                         fused_kernels=self.fused_kernels, sequences=self.sequences)

    def headline(self) -> str:
        """One line for the console and the Train page."""
        where = ("unquantized" if self.quantization == "none" else self.quantization) + " weights" if self.device == "cuda" else "CPU, fp32"
        memory = (f"about {self.estimate_bytes / GiB:.1f} of {self.budget_bytes / GiB:.1f} GiB" if self.device == "cuda"
                  else f"about {self.ram_estimate_bytes / GiB:.1f} of {self.ram_budget_bytes / GiB:.1f} GiB of RAM")
        method = (f"GRPO, {self.group} answers of up to {self.completion_tokens} tokens per prompt, " if self.method == "grpo"
                  else f"{self.method.upper()}, " if self.method != "sft" else "")
        pairs = " pairs" if self.sequences == 2 else ""
        return (f"{method}{where}, micro-batch {self.micro_batch}{pairs} x {self.grad_accum}, checkpointing "
                f"{'on' if self.gradient_checkpointing else 'off'}, up to {self.seq_len} tokens, {self.optimizer}"
                f"{', lean memory' if self.lean_memory else ''}, LoRA r{self.lora_r}: {memory}"
                f"{f' on each of {self.processes} GPUs' if self.processes > 1 and self.device == 'cuda' else ''}"
                f"{' (the model sharded over them)' if self.sharded and self.processes > 1 else ''}"
                f"{f' in each of {self.processes} processes' if self.processes > 1 and self.device == 'cpu' else ''}")


def accumulation(effective: int, micro_batch: int, processes: int = 1) -> int:
    """Micro-batches per optimizer step and process that keep the effective batch (the one
    place it is computed)."""
    return max(1, math.ceil(effective / (micro_batch * processes)))


# -- budgets -------------------------------------------------------------------------------
def budget_from_free(free_bytes: int) -> int:
    """Usable bytes of a card with `free_bytes` free: minus the CUDA context, minus headroom."""
    return int((free_bytes - CONTEXT_RESERVE) * (1 - SAFETY))


def budget_from_cap(cap_bytes: int) -> int:
    """Usable bytes under an allocator cap that already excludes the context (simulated cards)."""
    return int(cap_bytes * (1 - SAFETY))


def ram_budget(available: int | None, total: int | None) -> int:
    """RAM a run may use: what is available now, less the desktop's share."""
    if not available:
        return UNKNOWN_RAM
    return max(0, int(available - max(DESKTOP_RAM, DESKTOP_RAM_SHARE * (total or available))))
