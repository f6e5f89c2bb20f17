"""Two or more GPUs: copy the model to each card (data-parallel) or shard it over them
(FSDP2, engine/training/sharding.py), chosen by memory and said in plain words.

Data-parallel is the first choice whenever the whole model fits one card: the cards then
exchange only LoRA's gradients (tens of MB) once per step. Sharding exchanges every
layer's weights in every forward and backward pass, which over a gaming PC's PCIe link
costs a large share of the speed; it is worth it only when the model does not fit one
card, or fits only with levers that cost more (the planner's ORDER went past the fast
rows: it still prefers data-parallel then, since a run that fits is what counts).

What a card holds when the model is sharded over N of them (`per_card`):
- the decoder layers' weights: 1/N of them, stored, plus the whole weights of two layers
  at a time (the one running, gathered just before it runs, and the next one, prefetched);
- the root's weights (the decoder's own: embeddings, final norm): whole, for the whole pass
  (FSDP2 keeps the root gathered between forward and backward), plus its 1/N stored share;
  the output head (lm_head) is not sharded: whole on every card (a tied head keeps the
  embedding table whole once more);
- LoRA's weights, gradients and AdamW states: 1/N, plus two layers' gathered;
- activations and logits: per card exactly as in data-parallel (each card runs its own
  micro-batches through every layer).
Sharded plans are unquantized (bf16). QLoRA under FSDP2 does not work with bitsandbytes
as released: fully_shard chunks each weight into a plain tensor, so a 4-bit weight loses
its Params4bit class and quantization state (bitsandbytes issues #1424 and #1945, open;
accelerate #3983: silent wrong losses), and 8-bit weights cannot be sharded at all. A 4-bit
or 8-bit request with --shard is refused in plain words; without --shard, a model that
fits one card only in 4 bits runs data-parallel in 4 bits.
GRPO is never sharded (config.GRPO_SHARD_REFUSED): under FSDP2 every forward is a
collective, and generation on each card stops when that card's answers end, so the cards'
numbers of passes differ and they wait on each other for ever. Data-parallel GRPO needs no
agreement while sampling; a model that fits one card only sharded cannot run GRPO on N.

`--shard` / `--no-shard` (TrainConfig.shard) override the choice. Plan.sharded records it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass

from ..config import GRPO_SHARD_REFUSED
from ..models.model_info import ModelInfo
from . import planner
from .memory import GiB, StepShape, breakdown, ram_bytes
from .plan import Plan, Target

GATHERED_LAYERS = 2  # the running layer and the prefetched next one
RESTART_ENV = "TUNEDESK_PLAN_AFTER_OOM"  # set by the launcher: the plan a sharded run ran out of memory under
# What a sharded plan never uses: quantized weights (module docstring), the embedding
# table in RAM and lean memory (they move tensors between the card and RAM behind FSDP's
# back), and 8-bit AdamW (bitsandbytes takes no sharded parameters; with the states
# sharded N ways it saves little anyway).
SHARDED_FORCE = {"quantization": "none", "embeddings_on_cpu": False, "lean_memory": False, "optimizer": "adamw"}
QUANT_REFUSED = ("QLoRA cannot be sharded yet: bitsandbytes' 4-bit and 8-bit weights lose their quantization state "
                 "when FSDP2 shards them (bitsandbytes issues #1424, #1945). Use --no-shard (each card holds the whole "
                 "4-bit model) or unquantized weights.")


@dataclass
class ShardedInfo(ModelInfo):
    """A model's counts as one card of N sees them: what the memory terms need, unchanged."""

    lora_share: float = 1.0

    def lora_params(self, r: int, targets: list[str] | str = "all-linear") -> int:
        return int(super().lora_params(r, targets) * self.lora_share)


def per_card(m: ModelInfo, n: int) -> ModelInfo:
    """`m` as each of `n` cards holds it when sharded (module docstring); `m` when n is 1."""
    if n <= 1:
        return m
    layer_share = 1 / n + min(1.0, GATHERED_LAYERS / max(1, m.layers))
    root_share = 1 + 1 / n
    linear = int(m.params_linear * layer_share)
    emb, head = int(m.params_embedding * (root_share + (1 if m.tied_embeddings else 0))), m.params_lm_head
    norm, other = int(m.params_norm * root_share), int(m.params_other * root_share)
    values = {f.name: getattr(m, f.name) for f in dataclasses.fields(ModelInfo)}
    values.update(params_linear=linear, params_embedding=emb, params_lm_head=head, params_norm=norm,
                  params_other=other, params_total=linear + emb + head + norm + other)
    return ShardedInfo(**values, lora_share=layer_share)


def card_info(m: ModelInfo, p: Plan) -> ModelInfo:
    """The counts the memory terms of plan `p` use (recovery re-estimates with them)."""
    return per_card(m, p.processes) if p.sharded else m


def resolve(cfg, m: ModelInfo, target: Target, lengths=None, *, train_rows=None, tails=None, prompts=None) -> Plan:
    """planner.resolve, with the choice between data-parallel and sharded for --gpus N."""
    n = cfg.train.gpus
    whole = planner.resolve(cfg, m, target, lengths, train_rows=train_rows, tails=tails, prompts=prompts)
    asked = getattr(cfg.train, "shard", None)
    if n <= 1 or asked is False:
        return whole
    sharded = _sharded(cfg, m, target, lengths, train_rows, tails, prompts)
    if asked is None and whole.fits:
        reasons = dict(whole.reasons)
        hint = (" Sharded, it would fit unquantized (--shard): more exact, slower per step."
                if whole.quantization != "none" and sharded.fits and sharded.quantization == "none" else "")
        reasons["processes"] = (f"{reasons.get('processes', '')} The whole model fits each card, so it is not sharded: "
                                f"the cards exchange only LoRA's gradients, once per step.{hint}").strip()
        return dataclasses.replace(whole, reasons=reasons)
    if asked is None and not sharded.fits:
        reasons = dict(whole.reasons)
        cards_hold = sharded.device == "cuda" and sharded.estimate_bytes <= sharded.budget_bytes
        why = (sharded.suggestion if cards_hold else  # the cards would hold it; the RAM would not
               f"about {_gib(sharded.estimate_bytes or sharded.ram_estimate_bytes)} GiB per card.")
        why = (f"Sharded over {n} cards it does not fit either: {why}" if sharded.suggestion != GRPO_SHARD_REFUSED
               else GRPO_SHARD_REFUSED)
        reasons["processes"] = f"{reasons.get('processes', '')} {why}".strip()
        return dataclasses.replace(whole, reasons=reasons)
    return _explained(sharded, whole, m, n, asked)


def _sharded(cfg, m, target, lengths, train_rows, tails, prompts=None) -> Plan:
    """The planner's search with each card's share of the model, and the levers sharding excludes."""
    c = copy.deepcopy(cfg)
    asked_quant = cfg.model.quantization
    c.model.embeddings_on_cpu, c.model.lean_memory = SHARDED_FORCE["embeddings_on_cpu"], SHARDED_FORCE["lean_memory"]
    c.model.quantization, c.train.optimizer = SHARDED_FORCE["quantization"], SHARDED_FORCE["optimizer"]
    p = planner.resolve(c, per_card(m, cfg.train.gpus), target, lengths, train_rows=train_rows, tails=tails,
                        prompts=prompts)
    asked = planner.user_settings(cfg)
    user_set = tuple(k for k in p.user_set if k not in SHARDED_FORCE or k in asked)
    p = p.replace(sharded=True, user_set=user_set)
    if cfg.method.name == "grpo":  # its cards would sample answers of different lengths (config.GRPO_SHARD_REFUSED)
        p = dataclasses.replace(p, fits=False, suggestion=GRPO_SHARD_REFUSED)
    elif asked_quant not in (None, "none") and p.device == "cuda":
        p = dataclasses.replace(p, fits=False, suggestion=QUANT_REFUSED)
    elif p.device == "cuda" and loading_ram(m, p, cfg.train.gpus) > target.ram_bytes:
        p = dataclasses.replace(p, fits=False, suggestion=(
            f"Sharding loads the whole model into RAM in each of the {cfg.train.gpus} processes before it moves each "
            f"card's share to it: about {_gib(loading_ram(m, p, cfg.train.gpus))} GiB of RAM, and this PC has "
            f"{_gib(target.ram_bytes)} GiB to spare. Close other programs, add RAM, or pick a smaller model."))
    return p


def loading_ram(m: ModelInfo, p: Plan, n: int) -> int:
    """RAM while a sharded run loads: every process holds the whole bf16 model for a moment
    (engine/models/loading.py), beside its own libraries and data."""
    return int(n * (whole_weights(m, p) + ram_bytes(m, p.shape())))


def whole_weights(m: ModelInfo, p: Plan) -> int:
    """The whole model's weights as plan `p` stores them (one card without sharding)."""
    return breakdown(m, StepShape(p.quantization, 2, 1, 64, lora_r=p.lora_r, lora_targets=p.lora_targets))["weights"]


def _explained(p: Plan, whole: Plan, m: ModelInfo, n: int, asked: bool | None) -> Plan:
    """`p` (sharded) with the reason in plain words and the per-card figures."""
    cpu = p.device == "cpu"
    full = _gib(whole_weights(m, p) if not cpu else m.params_total * 4)  # the whole model, as this plan stores it
    share = per_card(m, n)
    layers = _gib(m.params_linear * (1 / n) * (4 if cpu else _bytes(p)))
    gathered = _gib(m.params_linear * min(1.0, GATHERED_LAYERS / max(1, m.layers)) * (4 if cpu else _bytes(p)))
    root = _gib((share.params_embedding + share.params_lm_head + share.params_norm + share.params_other) * (4 if cpu else 2))
    per = _gib(p.breakdown.get("weights", 0) if not cpu else share.params_total * 4)
    over = (f"{_gib(whole.estimate_bytes)} GiB of {_gib(whole.budget_bytes)}" if not cpu else
            f"{_gib(whole.ram_estimate_bytes)} GiB of {_gib(whole.ram_budget_bytes)} GiB of RAM")
    why = "you asked for it (--shard)" if asked else f"the whole model does not fit one card (even its leanest step needs {over})"
    reasons = dict(p.reasons)
    reasons["processes"] = (
        f"Sharded over {n} {'GPUs' if not cpu else 'CPU processes'} (FSDP2): {why}. Each card keeps 1/{n} of the layers' "
        f"weights ({layers} GiB), the embeddings and output layer whole ({root} GiB) and two layers gathered at a time "
        f"({gathered} GiB): {per} GiB of weights per card instead of {full}. Activations are per card as in "
        f"data-parallel; every layer's weights travel between the cards in each pass, so a step is slower than "
        f"on one card that could hold the model. The memory figures are per card.")
    return dataclasses.replace(p, reasons=reasons)


def spread(p: Plan, processes: int, m: ModelInfo) -> Plan:
    """`p` on another number of processes (a checkpoint resumes on 1 GPU or N): a sharded
    plan's per-card figures are estimated anew for that number; on one process it is a
    plain plan (the card must then hold the whole model; calibration checks it)."""
    if not p.sharded:
        return planner.spread(p, processes)
    if processes == p.processes:
        return p
    q = planner.recovered(per_card(m, processes), p, "", processes=processes)
    q = dataclasses.replace(q, sharded=processes > 1)
    reasons = dict(q.reasons)
    reasons["grad_accum"] = planner.spread(p.replace(sharded=False), processes).reasons.get("grad_accum", "")
    if processes > 1:
        reasons["processes"] = f"Sharded over {processes} processes (FSDP2), as the run was; the memory figures are per card."
    else:
        reasons["processes"] = "The run was sharded; it continues in one process, which holds the whole model."
    return dataclasses.replace(q, reasons=reasons)


def failed_plan() -> tuple[Plan, dict] | None:
    """After a rank ran out of memory in a sharded run, the launcher restarts it with
    RESTART_ENV naming a file with the plan it ran under (and the rank and step): that
    plan and the note, for CardFit to make one step smaller. None when not restarted."""
    path = os.environ.get(RESTART_ENV)
    if not path or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        note = json.load(f)
    return Plan.from_dict(note["plan"]), note


def _bytes(p: Plan) -> float:
    return 2.0  # bf16: sharded plans are unquantized


def _gib(n: float) -> str:
    return f"{n / GiB:.1f}"
