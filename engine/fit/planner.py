"""Choose a training plan that fits the card (and the RAM), and say why in plain words.

`resolve(cfg, info, target, lengths)` is the one entry point of the product: the CLI's
`plan` and `train`, the window's Plan page and the trainer all call it, with a `Target`
from `target_for` (the one budget and bf16 rule). It returns a frozen `Plan`: what the
run uses. The request (RunConfig) is never written to; recovery makes a new Plan.

Search, data first: the longest row is kept whole if any setting fits it, trying the
fastest settings first (ORDER); only when nothing holds it does the length shrink, to
the longest that fits at the leanest setting, and longer rows are truncated (prompt cut
from its start, the answer kept; engine/data/fit_length.py), never silently dropped.
The search goes up to the model's own context (max_position_embeddings).

About 370 lines in one module on purpose: the search and the sentences that explain its
choices (reasons, suggestions, refusals) quote the same figures, and apart they drifted.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..models.model_info import ModelInfo
from . import methods, schedule
from .memory import GiB, StepShape, breakdown, cpu_breakdown, generation_bytes, kv_cache_bytes, ram_bytes
from .plan import (
    CONTEXT_RESERVE,
    SAFETY,
    UNKNOWN_RAM,
    Plan,
    Target,
    accumulation,
    budget_from_cap,
    budget_from_free,
    ram_budget,
)

CPU_HEADROOM = 0.15  # of a CPU plan's RAM budget: what the steps may add over the measured step
MAX_LOST_SHARE = 0.10  # a shorter length may cut at most this share of the data's tokens (the trainer checks trained tokens)
MIN_SEQ = 64
CPU_MICRO_BATCH = 4  # the CPU's time is linear in tokens: a bigger micro-batch buys nothing and costs RAM
LENGTH_STEP = 64  # lengths are searched and rounded in these steps
# (quantization, gradient checkpointing, optimizer, LoRA rank divisor, embeddings in
# RAM, lean memory), best first: a halved rank still learns a persona or a format;
# shortening rows loses data. The embedding table in RAM costs about 6% of the speed
# (a CPU lookup, then one copy of the looked-up rows to the GPU; bench/README.md) and only
# untied models can do it. Lean memory (engine/models/lean.py) is slower, so it comes last, before a lower rank.
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
# The request's fields the planner fills when the user left them empty (None).
PLANNED = ("quantization", "gradient_checkpointing", "micro_batch", "seq_len", "optimizer", "embeddings_on_cpu",
           "lean_memory")


def target_for(cfg, hw, *, cuda: bool | None = None, cuda_free_bytes: int | None = None) -> Target:
    """The one rule for what a run plans against. An explicit card size (cfg.train.vram_gb)
    wins; else the probed GPU (a simulated card is a cap that already excludes the
    context); else the free memory torch reports; else the CPU."""
    ram = ram_budget(getattr(hw, "ram_available_bytes", None), getattr(hw, "ram_total_bytes", None))
    gpu = getattr(hw, "gpu", None)
    use_cuda = (gpu is not None or cuda_free_bytes is not None or bool(cfg.train.vram_gb)) if cuda is None else cuda
    if cfg.train.device == "cpu" or not use_cuda:
        return Target("cpu", None, None, ram, bf16=False)
    cards = _cards(hw, cfg.train.gpus)
    if cards:  # several GPUs: the plan must fit the smallest of them
        gpu = min(cards, key=lambda g: g.free_bytes)
    bf16 = gpu.bf16 if gpu is not None else True
    if cfg.train.vram_gb:
        free = int(cfg.train.vram_gb * GiB)
        return Target("cuda", budget_from_free(free), free - CONTEXT_RESERVE, ram, bf16)
    if hw is not None and hw.simulated_vram_bytes:
        cap = hw.simulated_vram_bytes
        return Target("cuda", budget_from_cap(cap), cap, ram, bf16)
    free = gpu.free_bytes if gpu is not None else cuda_free_bytes
    return Target("cuda", budget_from_free(free), free - CONTEXT_RESERVE, ram, bf16)


def _cards(hw, n: int) -> list:
    """The n cards a run spread over n GPUs uses: those with the most free memory."""
    gpus = list(getattr(hw, "gpus", None) or [])
    return sorted(gpus, key=lambda g: -g.free_bytes)[:n] if n > 1 else []


def spread(p: Plan, processes: int, why: str = "") -> Plan:
    """`p` run data-parallel over `processes` GPUs: each holds the whole model and trains
    on its share of every step, so the memory figures are per card and accumulation
    shrinks. A model that does not fit one card is sharded instead (engine/fit/sharding.py)."""
    if processes == p.processes:
        return p
    q = p.replace(processes=processes)
    reasons = dict(q.reasons)
    reasons["grad_accum"] = (f"{_micro_batches(q.grad_accum)} per step on each of {processes} processes {_keep(q.grad_accum)} the "
                             f"effective batch at {q.effective_batch}." if processes > 1 else
                             f"{_micro_batches(q.grad_accum)} per step {_keep(q.grad_accum)} the effective batch at {q.effective_batch}.")
    if processes > 1:
        reasons["processes"] = (f"Data-parallel on {processes} {'GPUs' if q.device == 'cuda' else 'CPU processes'}: each holds "
                                f"the whole model and trains on 1/{processes} of every step's examples"
                                f"{why}; the memory figures are per card.")
    else:
        reasons.pop("processes", None)
    return dataclasses.replace(q, reasons=reasons)


# -- the request ---------------------------------------------------------------------------
def user_settings(cfg) -> dict[str, Any]:
    """The plan fields the user set in a RunConfig (None means: the planner chooses)."""
    values = {
        "quantization": cfg.model.quantization,
        "gradient_checkpointing": cfg.model.gradient_checkpointing,
        "micro_batch": cfg.train.micro_batch,
        "seq_len": cfg.data.max_seq_len,
        "optimizer": cfg.train.optimizer,
        "embeddings_on_cpu": cfg.model.embeddings_on_cpu,
        "lean_memory": cfg.model.lean_memory,
    }
    return {k: v for k, v in values.items() if v is not None}


def effective_batch(cfg, cuda: bool, train_rows: int | None = None) -> int:
    """Examples per optimizer step: the user's, else 16 on a GPU and 4 on the CPU (GRPO's
    prompts: 4 and 2); never more than the training rows, so every epoch is at least one step."""
    t = cfg.train
    # GRPO's examples are prompts, each sampled G times: 4 prompts (16 answers at G = 4) per step on a GPU.
    default = (4 if cuda else 2) if cfg.method.name == "grpo" else (16 if cuda else 4)
    n = t.effective_batch or (t.micro_batch * t.grad_accum if t.micro_batch and t.grad_accum else default)
    return max(1, min(n, train_rows)) if train_rows else n


def resolve(cfg, m: ModelInfo, target: Target, lengths: np.ndarray | None = None, *, train_rows: int | None = None,
            tails: np.ndarray | None = None, prompts: np.ndarray | None = None) -> Plan:
    """The plan for a request on a target: what the trainer uses and what the window shows.
    The data's part comes from PreparedData.plan_inputs(): lengths, tails (per row, the
    tokens from its last answer's start: what truncation keeps), train_rows, prompts (per
    row, the tokens before its last answer: GRPO plans for each prompt plus its sampled
    answer, G of them per prompt, whatever the rows' own answers are)."""
    forced = user_settings(cfg)
    method = cfg.method
    group = completion = 0
    if method.name == "grpo":
        group, completion = method.group, method.completion_tokens
        base = prompts if prompts is not None else None
        lengths = None if base is None else base + completion
        tails = lengths  # the answers are sampled, not read: a shorter length cuts the prompts' starts
    asked_r, rank_why = (cfg.lora.r, schedule.SET_BY_YOU) if cfg.lora.r else schedule.rank(train_rows)
    p = plan(m, budget_bytes=target.budget_bytes, lengths=lengths, tails=tails,
             effective_batch=effective_batch(cfg, target.device == "cuda", train_rows),
             lora_r=asked_r, bf16=target.bf16, force=forced, ram_bytes=target.ram_bytes, cap_bytes=target.cap_bytes,
             group=max(1, group), completion=completion, method=cfg.method.name)
    p = dataclasses.replace(p, reasons={"method": methods.reason(cfg.method), **p.reasons})
    dropout = 0.0 if p.lean_memory else cfg.lora.dropout  # lean memory has no LoRA dropout (engine/models/lean.py)
    asked_alpha = cfg.lora.alpha or 2 * asked_r
    alpha = asked_alpha if p.lora_r == asked_r else max(1, round(asked_alpha * p.lora_r / asked_r))
    p = spread(p.replace(lora_alpha=alpha, lora_dropout=dropout, lora_targets=cfg.lora.target_modules,
                         long_rows=cfg.data.long_rows, user_set=tuple(sorted(forced)), method=cfg.method.name), cfg.train.gpus)
    p = p.replace(grad_accum=cfg.train.grad_accum) if cfg.train.grad_accum and cfg.train.micro_batch else p
    return sized(p, cfg, train_rows, lengths, rank_why)


def sized(p: Plan, cfg, train_rows: int | None, lengths, rank_why: str) -> Plan:
    """`p` with the learning rate, epochs and evaluation cadence sized to the data
    (engine/fit/schedule.py), each with its reason; the rank's reason joins the memory's."""
    t = cfg.train
    s = schedule.choose(train_rows or 0, lengths, p.examples_per_step, lr=t.lr, epochs=t.epochs, lora_r=p.lora_r,
                        eval_every=t.eval_every, max_steps=t.max_steps)
    reasons = {**p.reasons, **{k: v for k, v in s.reasons.items() if k != "lora_r"}}
    reasons["lora_r"] = f"{rank_why.rstrip('.')}. {p.reasons.get('lora_r', '')}".strip()
    return dataclasses.replace(p, lr=s.lr, epochs=s.epochs, eval_every=s.eval_every, total_steps=s.total_steps,
                               data_warning=s.warning, reasons=reasons)


# -- the search ----------------------------------------------------------------------------
def _up(n: float) -> int:
    return int(math.ceil(n / LENGTH_STEP) * LENGTH_STEP)


def plan(
    m: ModelInfo,
    *,
    budget_bytes: int | None,
    lengths: np.ndarray | None = None,
    effective_batch: int = 16,
    lora_r: int = 16,
    bf16: bool = True,
    force: dict[str, Any] | None = None,
    ram_bytes: int = UNKNOWN_RAM,
    cap_bytes: int | None = None,
    tails: np.ndarray | None = None,
    group: int = 1,
    completion: int = 0,
    fused_kernels: bool | None = None,
    method: str = "sft",
) -> Plan:
    """A plan for a CUDA card with `budget_bytes` usable, or a CPU plan (RAM) when None.
    GRPO: `group` sequences per example, `completion` of each row's tokens sampled first;
    `method` says how many sequences an example is (engine/fit/methods.py).
    fused_kernels: whether liger's kernels will run (None: whether they can here)."""
    force = force or {}
    if fused_kernels is None:
        from ..models.speed import fused_kernels_available

        fused_kernels = budget_bytes is not None and fused_kernels_available()
    context = m.context_length or 1 << 17
    longest = _up(max(MIN_SEQ, min(int(lengths.max()), context))) if lengths is not None and len(lengths) else min(1024, context)
    longest = max(longest, min(context, _up(completion + MIN_SEQ))) if completion else longest
    need = min(force.get("seq_len", longest), context)
    cpu = budget_bytes is None
    budget = int(ram_bytes * (1 - CPU_HEADROOM)) if cpu else budget_bytes
    search = _Search(m, budget, ram_bytes, effective_batch, lora_r, force, cpu, group, completion, fused_kernels and not cpu,
                     methods.sequences(method))
    found = search.first_fit(need)
    if found is None and "seq_len" not in force:
        shorter = search.longest_fit(need)
        if shorter is not None and lost_share(tails if tails is not None else lengths, shorter) <= MAX_LOST_SHARE:
            found = search.first_fit(shorter)
    if found is not None:
        data_max = int(lengths.max()) if lengths is not None and len(lengths) else 0
        why = ("set by you" if "seq_len" in force
               else f"this model's context; {int((lengths > found.seq_len).sum())} longer row(s) are truncated to it"
               if data_max > found.seq_len >= context
               else f"covers every prompt and a {completion}-token answer" if completion and found.seq_len >= longest
               else "covers every example" if found.seq_len >= longest
               else _truncation_words(lengths, found.seq_len, longest))
        return _make(m, found, budget, ram_bytes, cap_bytes, effective_batch, why, bf16, lora_r, True, "", method)
    best = search.smallest(need)
    suggestion = _suggest(search, need, budget, cpu)
    return _make(m, best, budget, ram_bytes, cap_bytes, effective_batch, "set by you" if "seq_len" in force else "",
                 bf16, lora_r, False, suggestion, method)


class _Search:
    """Shapes for one model, budget and request; `fits` is the one test of a shape."""

    def __init__(self, m, budget, ram, effective, lora_r, force, cpu, group=1, completion=0, fused=False, sequences=1) -> None:
        self.m, self.budget, self.ram, self.effective, self.lora_r, self.force, self.cpu = m, budget, ram, effective, lora_r, force, cpu
        self.group, self.completion, self.fused, self.sequences = group, completion, fused, sequences

    def rows(self):
        if self.cpu:  # fp32 on the CPU; checkpointing is the one memory lever there
            order = [("none", False, "adamw", 1, False, False), ("none", True, "adamw", 1, False, False)]
        else:
            order = ORDER
        for quant, ckpt, optim, rank_div, cpu_embed, lean in order:
            ckpt = self.force.get("gradient_checkpointing", ckpt)
            yield StepShape(
                "none" if self.cpu else self.force.get("quantization", quant), 4 if self.cpu else 2, 1, 0, ckpt,
                max(4, self.lora_r // rank_div), optimizer="adamw" if self.cpu else self.force.get("optimizer", optim),
                embeddings_on_cpu=not self.cpu and self.force.get("embeddings_on_cpu", cpu_embed and not self.m.tied_embeddings),
                lean=not self.cpu and bool(self.force.get("lean_memory", lean)) and ckpt, group=self.group,
                completion=self.completion, fused_kernels=self.fused, sequences=self.sequences)

    def batches(self) -> list[int]:
        # Any size, not only powers of two: the largest that fits uses the card best.
        forced = self.force.get("micro_batch")
        most = CPU_MICRO_BATCH if self.cpu else 32
        return [forced] if forced else list(range(max(1, min(self.effective, most)), 0, -1))

    def estimate(self, s: StepShape) -> tuple[int, int]:
        """(device bytes, RAM bytes) of a shape: on the CPU both are the RAM."""
        return _memory(self.m, s)[1:]

    def fits(self, s: StepShape) -> bool:
        device, ram = self.estimate(s)
        return device <= self.budget and ram <= (self.budget if self.cpu else self.ram)

    def first_fit(self, seq: int) -> StepShape | None:
        """The fastest shape that holds `seq` tokens: ORDER first, then the largest micro-batch."""
        for row in self.rows():
            for mb in self.batches():
                s = dataclasses.replace(row, micro_batch=mb, seq_len=seq)
                if self.fits(s):
                    return s
        return None

    def longest_fit(self, below: int) -> int | None:
        """The longest length under `below` that some shape fits at micro-batch 1 (binary search)."""
        lo, hi = 0, below // LENGTH_STEP  # in steps; lo fits (or is 0), hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.first_fit(mid * LENGTH_STEP) is not None:
                lo = mid
            else:
                hi = mid
        # GRPO: a length that leaves no room for a prompt beside the answer is no length.
        return lo * LENGTH_STEP if lo * LENGTH_STEP >= MIN_SEQ + self.completion else None

    def smallest(self, seq: int) -> StepShape:
        """The shape with the smallest estimate at `seq` (what a refusal shows)."""
        shapes = [dataclasses.replace(r, micro_batch=mb, seq_len=seq) for r in self.rows() for mb in self.batches()]
        return min(shapes, key=lambda s: self.estimate(s)[0])


def lost_share(lengths: np.ndarray | None, seq: int) -> float:
    """The share of `lengths` (the rows' answer tails, or whole rows) past `seq` tokens:
    what truncating to `seq` loses of what is trained."""
    if lengths is None or not len(lengths):
        return 0.0
    return float(np.clip(lengths - seq, 0, None).sum() / max(1, lengths.sum()))


def _truncation_words(lengths, seq: int, longest: int) -> str:
    over = int((lengths > seq).sum()) if lengths is not None else 0
    return (f"the longest that fits this card ({longest} would not): {over} longer row(s) are truncated, "
            "the start of the prompt cut and the answer kept")


def _memory(m, s: StepShape) -> tuple[dict[str, int], int, int]:
    """A shape's (device breakdown, device bytes, RAM bytes); on the CPU the device is the RAM."""
    cpu = s.dtype_bytes == 4
    parts = cpu_breakdown(m, s) if cpu else breakdown(m, s)
    total = sum(parts.values())
    return parts, total, total if cpu else ram_bytes(m, s)


# What a recovery can change, and the reason the plan then gives for it.
RECOVERABLE = ("micro_batch", "grad_accum", "gradient_checkpointing", "lean_memory", "seq_len", "completion_tokens")


def recovered(m, p: Plan, why: str, **changes: Any) -> Plan:
    """`p` with recovery's changes, its memory figures re-estimated for the new shape (so
    calibration and the Runs page compare the shape that ran) and the changed settings'
    reasons saying why they changed."""
    q = p.replace(**changes)
    parts, total, ram_need = _memory(m, q.shape())
    cpu = q.device == "cpu"
    reasons = dict(q.reasons)
    for key in RECOVERABLE:
        if getattr(q, key) != getattr(p, key):
            reasons[key] = f"Changed when the card ran short: {why}."
    return dataclasses.replace(q, estimate_bytes=0 if cpu else total, ram_estimate_bytes=ram_need,
                               breakdown={} if cpu else parts, reasons=reasons)


def _make(m, s: StepShape, budget, ram, cap, effective, seq_why, bf16, requested_r, fits, suggestion, method="sft") -> Plan:
    cpu = s.dtype_bytes == 4
    parts, total, ram_need = _memory(m, s)
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
        "micro_batch": (f"{s.micro_batch} prompt(s) per pass, each with {s.group} sampled answers ({s.micro_batch * s.group} "
                        f"sequences of up to {s.seq_len} tokens), is the most that fits." if s.completion else
                        f"{methods.unit(method, s.micro_batch)} of up to {s.seq_len} tokens per forward pass is the most that fits."),
        "grad_accum": (f"{_micro_batches(accumulation(effective, s.micro_batch))} per step "
                       f"{_keep(accumulation(effective, s.micro_batch))} the effective batch at {effective}."),
        "seq_len": f"{s.seq_len} tokens: {seq_why}." if seq_why else f"{s.seq_len} tokens.",
        "lora_r": f"Rank {s.lora_r} on every linear layer: {m.lora_params(s.lora_r) / 1e6:.1f} M trainable parameters"
        + (" (lowered to fit this card)." if s.lora_r < requested_r else "."),
        "embeddings_on_cpu": (
            f"The input embedding table ({m.params_embedding * 2 / GiB:.1f} GiB) stays in RAM: a lookup needs no GPU."
            if s.embeddings_on_cpu
            else "The embedding table stays on the GPU."
        ),
        "lean_memory": (
            f"On: checkpointed activations wait in RAM ({ram_need / GiB:.1f} GiB of RAM in all) and LoRA dropout is off, "
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
    if s.completion:
        reasons["method"] = _grpo_words(m, s, parts)
    if cpu:
        keep = ("method", "gradient_checkpointing", "micro_batch", "grad_accum", "seq_len", "lora_r")
        reasons = {k: reasons[k] for k in keep if k in reasons}
        reasons["device"] = (f"No CUDA GPU: fp32 on the CPU, about {total / GiB:.1f} GiB of the {ram / GiB:.1f} GiB of RAM "
                             "this run may use. Fine for the demo model, very slow for real ones.")
    return Plan(
        fits=fits, device="cpu" if cpu else "cuda", quantization=s.quantization, micro_batch=s.micro_batch,
        grad_accum=accumulation(effective, s.micro_batch), effective_batch=effective,
        gradient_checkpointing=s.gradient_checkpointing, seq_len=s.seq_len, lora_r=s.lora_r, lora_alpha=2 * s.lora_r,
        lora_dropout=0.0 if s.lean else 0.05, lora_targets="all-linear", optimizer=s.optimizer,
        embeddings_on_cpu=s.embeddings_on_cpu, lean_memory=s.lean, long_rows="truncate", bf16=bf16,
        budget_bytes=0 if cpu else int(budget), cap_bytes=0 if cpu else int(cap or budget / (1 - SAFETY)),
        ram_budget_bytes=int(ram), estimate_bytes=0 if cpu else total, ram_estimate_bytes=int(ram_need),
        breakdown={} if cpu else parts, reasons=reasons, suggestion=suggestion, group=s.group,
        completion_tokens=s.completion, fused_kernels=s.fused_kernels, method=method, sequences=s.sequences,
    )


def _grpo_words(m, s: StepShape, parts: dict[str, int]) -> str:
    """GRPO's two phases in plain words, with the figures the estimate used."""
    rows = s.micro_batch * s.group
    kv, gen = kv_cache_bytes(m, rows * s.seq_len, s.dtype_bytes), generation_bytes(m, s)
    train = parts["activations"] + parts["logits"]
    which = ("the training pass needs more, so the pass sets the peak" if gen <= train else
             f"it needs {(gen - train) / GiB:.2f} GiB more than the training pass, counted as 'generation'")
    return (f"GRPO: {s.group} answers of up to {s.completion} tokens are sampled for each prompt and scored, then the model "
            f"learns from all {rows} of a pass at once. Sampling holds a {kv / GiB:.2f} GiB KV cache "
            f"({rows} x {s.seq_len} tokens) and is done before the training pass starts; {which}.")


def _suggest(search: _Search, need: int, budget: int, cpu: bool) -> str:
    """One sentence whose figures agree with the verdict: the longest length that fits."""
    memory = "RAM" if cpu else "card"
    longest = search.longest_fit(need)
    if longest is None:
        smallest = search.smallest(min(need, 512))
        return (f"Even the leanest setting does not fit: this model needs about {search.estimate(smallest)[0] / GiB:.1f} GiB "
                f"at {smallest.seq_len} tokens, this {memory} offers {budget / GiB:.1f} GiB. Pick a smaller model "
                f"(about half the parameters){'' if cpu else ' or a bigger card'}.")
    return (f"At most {longest} tokens per row fit this {memory} with these settings (the rows need {need}): "
            f"shorten the examples or the sequence length, use 4-bit weights, a smaller model"
            f"{'' if cpu else ', or a bigger card'}.")


def _micro_batches(n: int) -> str:
    return f"{n} micro-batch" if n == 1 else f"{n} micro-batches"


def _keep(n: int) -> str:
    return "keeps" if n == 1 else "keep"
