"""Choose a training plan that fits the card, and say why in plain words.

Search order, best first: unquantized bf16 without then with gradient checkpointing,
then 4-bit NF4 without then with checkpointing (8-bit is slower than 4-bit in
bitsandbytes and rarely the only fit, so it is chosen only when asked for). For each,
the largest micro-batch (up to the effective batch) that fits at the sequence length is
taken. The sequence length covers the longest example when it fits,
else the data's p99, then p95 (rows above it are skipped and reported, never cut).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .memory import GiB, StepShape, breakdown, offloaded_bytes
from .model_info import ModelInfo

CONTEXT_RESERVE = 1 * GiB  # CUDA context + what the desktop holds, outside the allocator
SAFETY = 0.05  # of the rest: headroom for what the estimate misses
LEAN_RAM = 4 * GiB  # most pinned RAM lean memory may take (a 16 GB PC keeps working)
# (quantization, gradient checkpointing, optimizer, LoRA rank divisor, embeddings in
# RAM, lean memory), best first: a halved rank still learns a persona or a format;
# dropping long rows loses data. The embedding table in RAM costs about 6% of the speed
# (a CPU lookup, then one copy of the looked-up rows to the GPU; bench/README.md) and only
# untied models can do it. Lean memory (engine/lean.py) is slower, so it comes last, before a lower rank.
ORDER = [
    ("none", False, "adamw", 1, False, False),
    ("none", True, "adamw", 1, False, False),
    ("4bit", False, "adamw", 1, False, False),
    ("4bit", True, "adamw", 1, False, False),
    ("4bit", True, "adamw_8bit", 1, False, False),
    ("4bit", True, "adamw_8bit", 1, True, False),
    ("4bit", True, "adamw_8bit", 1, True, True),
    ("4bit", True, "adamw_8bit", 2, True, True),
]


@dataclass
class Plan:
    fits: bool
    device: str
    quantization: str
    micro_batch: int
    grad_accum: int
    gradient_checkpointing: bool
    max_seq_len: int
    lora_r: int
    lora_targets: list[str] | str
    optimizer: str
    embeddings_on_cpu: bool
    budget_bytes: int
    estimate_bytes: int
    breakdown: dict[str, int]
    reasons: dict[str, str] = field(default_factory=dict)
    suggestion: str = ""
    lean_memory: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def budget_from_free(free_bytes: int) -> int:
    """Usable bytes of a card with `free_bytes` free: minus the CUDA context, minus headroom."""
    return int((free_bytes - CONTEXT_RESERVE) * (1 - SAFETY))


def budget_from_cap(cap_bytes: int) -> int:
    """Usable bytes under an allocator cap that already excludes the context (simulated cards)."""
    return int(cap_bytes * (1 - SAFETY))


def budget_for(vram_gb: float | None, hw) -> int | None:
    """The budget of a run: an explicit card size, else the probed GPU (a simulated card
    is a cap that already excludes the context), else None (CPU)."""
    if vram_gb:
        return budget_from_free(int(vram_gb * GiB))
    if hw is None or hw.gpu is None:
        return None
    if hw.simulated_vram_bytes:
        return budget_from_cap(hw.simulated_vram_bytes)
    return budget_from_free(hw.gpu.free_bytes)


def user_settings(cfg) -> dict[str, Any]:
    """The plan fields the user set in a RunConfig (None means: the planner chooses)."""
    values = {
        "quantization": cfg.model.quantization,
        "gradient_checkpointing": cfg.model.gradient_checkpointing,
        "micro_batch": cfg.train.micro_batch,
        "max_seq_len": cfg.data.max_seq_len,
        "optimizer": cfg.train.optimizer,
        "embeddings_on_cpu": cfg.model.embeddings_on_cpu,
        "lean_memory": cfg.model.lean_memory,
    }
    return {k: v for k, v in values.items() if v is not None}


def effective_batch(cfg, cuda: bool) -> int:
    t = cfg.train
    return t.effective_batch or (t.micro_batch * t.grad_accum if t.micro_batch and t.grad_accum else (16 if cuda else 4))


def plan_run(cfg, m: ModelInfo, *, budget_bytes: int | None, lengths: np.ndarray | None, bf16: bool = True) -> "Plan":
    """The plan for a RunConfig: what the trainer uses and what the GUI shows, the same."""
    return plan(m, budget_bytes=budget_bytes, lengths=lengths, effective_batch=effective_batch(cfg, budget_bytes is not None),
                lora_r=cfg.lora.r, bf16=bf16, force=user_settings(cfg))


def seq_candidates(lengths: np.ndarray | None, context: int, default: int = 1024) -> list[tuple[int, str]]:
    """(length, why) from longest to shortest acceptable, rounded up to 64 tokens."""
    up = lambda n: min(context or n, int(math.ceil(n / 64) * 64))  # noqa: E731
    if lengths is None or len(lengths) == 0:
        return [(min(default, context or default), "no data given: a common default")]
    out = [(up(lengths.max()), "covers every example")]
    for q, label in ((99, "p99"), (95, "p95")):
        n = up(np.percentile(lengths, q))
        if n < out[-1][0]:
            skipped = int((lengths > n).sum())
            out.append((n, f"the data's {label}: {skipped} longer row(s) are skipped and reported"))
    return out


def plan(
    m: ModelInfo,
    *,
    budget_bytes: int | None,
    lengths: np.ndarray | None = None,
    effective_batch: int = 16,
    lora_r: int = 16,
    bf16: bool = True,
    force: dict[str, Any] | None = None,
) -> Plan:
    """A plan for a CUDA card with `budget_bytes` usable, or a CPU plan when None."""
    force = force or {}
    if budget_bytes is None:
        p = _cpu_plan(m, lengths, effective_batch, lora_r)
        for k, v in force.items():
            setattr(p, k, v)
        p.grad_accum = math.ceil(effective_batch / p.micro_batch)
        return p
    best: Plan | None = None
    for seq, seq_why in seq_candidates(lengths, m.context_length):
        if "max_seq_len" in force:
            seq, seq_why = force["max_seq_len"], "set by you"
        for quant, ckpt, optim, rank_div, cpu_embed, lean in ORDER:
            cpu_embed = force.get("embeddings_on_cpu", cpu_embed and not m.tied_embeddings)
            quant = force.get("quantization", quant)
            ckpt = force.get("gradient_checkpointing", ckpt)
            lean = force.get("lean_memory", lean) and ckpt
            optim = force.get("optimizer", optim)
            rank = force.get("lora_r", max(4, lora_r // rank_div))
            for mb in _batches(effective_batch, force.get("micro_batch")):
                shape = StepShape(quant, 2, mb, seq, ckpt, rank, optimizer=optim, embeddings_on_cpu=cpu_embed, lean=lean)
                parts = breakdown(m, shape)
                total = sum(parts.values())
                candidate = _make(m, shape, parts, budget_bytes, effective_batch, seq_why, bf16, lora_r)
                if _within(m, shape, total, budget_bytes):
                    return candidate
                if best is None or total < best.estimate_bytes:
                    best = candidate
        if "max_seq_len" in force:
            break
    assert best is not None
    best.fits = False
    best.suggestion = _suggest(m, budget_bytes, lengths, effective_batch, lora_r)
    return best


def _within(m: ModelInfo, s: StepShape, total: int, budget: int) -> bool:
    """The step fits the GPU budget, and lean memory's copy in RAM fits LEAN_RAM."""
    return total <= budget and offloaded_bytes(m, s) <= LEAN_RAM


def _leanest(m: ModelInfo, seq: int, lora_r: int) -> StepShape:
    """The last, leanest row of ORDER at micro-batch 1."""
    quant, ckpt, optim, rank_div, cpu_embed, lean = ORDER[-1]
    return StepShape(quant, 2, 1, seq, ckpt, max(4, lora_r // rank_div), optimizer=optim,
                     embeddings_on_cpu=cpu_embed and not m.tied_embeddings, lean=lean)


def _batches(effective: int, forced: int | None) -> list[int]:
    # Any size, not only powers of two: the largest that fits uses the card best.
    return [forced] if forced else list(range(max(1, min(effective, 32)), 0, -1))


def _make(m, s: StepShape, parts, budget, effective, seq_why, bf16, requested_r) -> Plan:
    weights_gib = parts["weights"] / GiB
    reasons = {
        "quantization": (
            f"Unquantized {'bf16' if bf16 else 'fp16'} weights ({weights_gib:.1f} GiB) fit: fastest and most accurate."
            if s.quantization == "none"
            else f"4-bit NF4 weights ({weights_gib:.1f} GiB) are needed to fit this model in {budget / GiB:.1f} GiB."
            if s.quantization == "4bit"
            else f"8-bit weights ({weights_gib:.1f} GiB)."
        ),
        "gradient_checkpointing": (
            "On: activations are recomputed in the backward pass, about 30% slower but far less memory."
            if s.gradient_checkpointing
            else "Off: the activations fit, so no time is spent recomputing them."
        ),
        "micro_batch": f"{s.micro_batch} example(s) of up to {s.seq_len} tokens per forward pass is the most that fits.",
        "grad_accum": f"{math.ceil(effective / s.micro_batch)} micro-batches per step keep the effective batch at {effective}.",
        "max_seq_len": f"{s.seq_len} tokens: {seq_why}.",
        "lora_r": f"Rank {s.lora_r} on every linear layer: {m.lora_params(s.lora_r) / 1e6:.1f} M trainable parameters"
        + (" (lowered to fit this card)." if s.lora_r < requested_r else "."),
        "embeddings_on_cpu": (
            f"The input embedding table ({m.params_embedding * 2 / GiB:.1f} GiB) stays in RAM: a lookup needs no GPU."
            if s.embeddings_on_cpu
            else "The embedding table stays on the GPU."
        ),
        "lean_memory": (
            "On: checkpointed activations wait in RAM and LoRA dropout is off, "
            "so these sequences fit (3–19% slower)."
            if s.lean
            else "Off: not needed for these sequences."
        ),
        "optimizer": (
            "AdamW with fp32 states: exact, and LoRA's states are small next to the weights."
            if s.optimizer == "adamw"
            else f"8-bit AdamW states (bitsandbytes) save {parts['lora'] * 0.375 / GiB:.2f} GiB, which this card needs."
        ),
    }
    return Plan(
        fits=True,
        device="cuda",
        quantization=s.quantization,
        micro_batch=s.micro_batch,
        grad_accum=math.ceil(effective / s.micro_batch),
        gradient_checkpointing=s.gradient_checkpointing,
        max_seq_len=s.seq_len,
        lora_r=s.lora_r,
        lora_targets="all-linear",
        optimizer=s.optimizer,
        embeddings_on_cpu=s.embeddings_on_cpu,
        lean_memory=s.lean,
        budget_bytes=int(budget),
        estimate_bytes=sum(parts.values()),
        breakdown=parts,
        reasons=reasons,
    )


def _suggest(m: ModelInfo, budget, lengths, effective, lora_r) -> str:
    # The longest sequence that would fit at the leanest setting, if any.
    peak = lambda seq: sum(breakdown(m, _leanest(m, seq, lora_r)).values())  # noqa: E731
    fits = lambda seq: _within(m, _leanest(m, seq, lora_r), peak(seq), budget)  # noqa: E731
    if not fits(128):
        return (f"Even 4-bit weights do not fit: this model needs about {peak(512) / GiB:.1f} GiB at 512 tokens, "
                f"the card offers {budget / GiB:.1f} GiB. Pick a smaller model (about half the parameters).")
    seq = 128
    while seq * 2 <= (m.context_length or 1 << 15) and fits(seq * 2):
        seq *= 2
    return f"Shorten the examples: at most {seq} tokens fit with 4-bit weights, gradient checkpointing and lean memory."


def _cpu_plan(m, lengths, effective, lora_r) -> Plan:
    seq = seq_candidates(lengths, m.context_length)[0][0]
    mb = min(4, effective)
    return Plan(
        fits=True, device="cpu", quantization="none", micro_batch=mb, grad_accum=math.ceil(effective / mb),
        gradient_checkpointing=False, max_seq_len=seq, lora_r=lora_r, lora_targets="all-linear", optimizer="adamw",
        embeddings_on_cpu=False,
        budget_bytes=0, estimate_bytes=0, breakdown={},
        reasons={"device": "No CUDA GPU: fp32 on the CPU. Fine for the demo model, very slow for real ones."},
    )
