"""One model sharded over several processes (FSDP2, PyTorch's `fully_shard`), for a model
whose weights do not fit one card but whose share of them does (engine/fit/sharding.py
decides).

Each decoder layer is one FSDP unit and the root (the decoder: embeddings, final norm) another:
a card keeps 1/N of every layer's weights and gathers one layer's whole weights just
before that layer runs (FSDP2 prefetches the next one), then frees them again. The LoRA
weights are sharded too, with their gradients and optimizer states: FSDP reduce-scatters
the gradients inside backward, summed (divide factor 1), which is what `Ranks.sum_grads`
does for data-parallel runs, so N sharded processes make the update one process makes.

What this changes for the loop, through `ShardedRanks` (engine/training/distributed.py's
`Ranks` with the same calls):
- every forward pass is a collective: each rank runs the same number of them, in the same
  order (evaluation pads the shorter ranks' share, the probe answers run on every rank);
- the adapter is gathered whole (`adapter_state`: only the trainable weights, never the
  frozen base) and written by rank 0 as a plain PEFT adapter, and the optimizer's states
  are gathered in the one-process layout, so a checkpoint resumes on 1 process or N;
- out of memory cannot be agreed on (the other ranks are already inside a collective):
  the rank says so in a file and leaves; torchrun ends the others and the launcher
  (`spread_over`) restarts from the last checkpoint one step smaller (see `ran_out`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .distributed import OOM_FILE, STOP_ENV, Ranks

OOM_EXIT = 75  # a rank's exit status after it ran out of memory under sharding (EX_TEMPFAIL)


class ShardedRanks(Ranks):
    """The ranks of a sharded run: the gradient exchange happens inside backward."""

    lockstep = True
    # (run folder or None, plan as a dict, steps done): set by the trainer, for `out_of_memory`
    context: Callable[[], tuple[Path | None, dict[str, Any], int]] = staticmethod(lambda: (None, {}, 0))

    def out_of_memory(self) -> None:
        """A pass ran out of memory on this rank: no agreement is possible (`ran_out`)."""
        ran_out(self, *self.context())

    def sum_grads(self, params: list[torch.Tensor]) -> None:
        """Nothing to do: FSDP reduce-scattered (summed) each micro-batch's gradients in backward."""

    def same_params(self, params: list[torch.Tensor]) -> None:
        """Done before sharding (`shard`): afterwards each rank holds a different piece."""

    def adapter_state(self, model) -> dict[str, torch.Tensor] | None:
        """The whole LoRA state in PEFT's keys, on rank 0 ({} on the others); every rank must
        call it (it all-gathers the trainable weights only)."""
        from peft import get_peft_model_state_dict
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True,
                                                                     ignore_frozen_params=True))
        return get_peft_model_state_dict(model, state_dict=full) if self.main else {}

    def load_adapter(self, model, peft_state: dict[str, torch.Tensor]) -> None:
        """A whole PEFT adapter (every rank read the same file) into the sharded LoRA weights."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        full = {_model_key(model, k): v for k, v in peft_state.items()}
        set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, strict=False))

    def optimizer_state(self, model, optimizer) -> dict[str, Any]:
        """The optimizer's whole state in one process's layout (parameters by number)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        if not optimizer.state:  # before the first step: DCP would make its states with a step at lr 0, and
            return optimizer.state_dict()  # AdamW's step count (its bias correction) would then be off by one
        full = get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return _by_number(model, full) if self.main else {}

    def load_optimizer(self, model, optimizer, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        if not state["state"]:  # a checkpoint from before the first step (see optimizer_state)
            optimizer.load_state_dict(state)
            return
        set_optimizer_state_dict(model, optimizer, _by_name(model, state), options=StateDictOptions(full_state_dict=True))


def shard(model, ranks: Ranks, cuda: bool) -> ShardedRanks:
    """Shard `model` (a PEFT model, LoRA attached) over the ranks: every decoder layer, then
    the root. The ranks first take rank 0's LoRA weights, as data-parallel runs do."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from ..models.speed import replayed_checkpoint, stock_checkpoint

    if any(type(p).__name__ in ("Params4bit", "Int8Params") for p in model.parameters()):
        from ..errors import ConfigError
        from ..fit.sharding import QUANT_REFUSED

        raise ConfigError(QUANT_REFUSED)  # fully_shard would drop their quantization state (silently wrong losses)
    ranks.same_params([p for p in model.parameters() if p.requires_grad])
    # On a GPU the base weights are bf16 and LoRA's fp32: FSDP gathers one dtype per unit,
    # so parameters travel in bf16 and gradients are reduced in fp32. On the CPU everything
    # is fp32 already.
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if cuda else MixedPrecisionPolicy()
    if cuda:  # loaded into RAM (loading.py): the output head is not sharded, so it goes to the card whole
        model.get_base_model().get_output_embeddings().to(torch.device("cuda", torch.cuda.current_device()))
    units = decoder_layers(model)
    for layer in units:
        if getattr(layer, "_gradient_checkpointing_func", None) is replayed_checkpoint:
            # FSDP2's hooks around a reentrant replay are not measured: the stock checkpointing
            layer._gradient_checkpointing_func = stock_checkpoint
        fully_shard(layer, mp_policy=mp)
    # The root is the decoder (embeddings, layers, final norm): the loss calls it and then
    # the output head's weight directly (engine/models/loss.py, chunked), and generate()
    # calls it through the causal LM, so its forward is where FSDP gathers the root's
    # weights. The output head (frozen, LoRA never adapts it) stays whole on every card.
    root = model.get_base_model().get_decoder()
    fully_shard(root, mp_policy=mp)
    for unit in [*units, root]:  # summed, as sum_grads does: the loss is already divided by the step's tokens
        unit.set_gradient_divide_factor(1.0)
        unit.set_force_sum_reduction_for_comms(True)  # a plain SUM: gloo has no PREMUL_SUM (NCCL takes either)
    return ShardedRanks(ranks.rank, ranks.world, ranks.local_rank)


def decoder_layers(model) -> list[torch.nn.Module]:
    """The decoder's blocks (Llama, Qwen, Mistral, Gemma, Phi-3: `layers`; GPT-NeoX: `layers` too)."""
    decoder = model.get_base_model().get_decoder()
    layers = getattr(decoder, "layers", None) or getattr(decoder, "h", None)
    if layers is None:
        from ..errors import ConfigError

        raise ConfigError(f"sharding needs the model's decoder layers; {type(decoder).__name__} has no `layers`. "
                          "Train it on one GPU (--no-shard).")
    return list(layers)


def _model_key(model, peft_key: str) -> str:
    """PEFT's file key (…q_proj.lora_A.weight) -> the model's (…q_proj.lora_A.default.weight)."""
    name = model.active_adapter
    for part in ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector"):
        marker = f".{part}."
        if marker in peft_key:
            head, tail = peft_key.split(marker, 1)
            return f"{head}.{part}.{name}.{tail}"
    return peft_key


def _trainable_names(model) -> list[str]:
    """In the optimizer's order: optim.py takes model.parameters() that require grad."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _by_number(model, state: dict[str, Any]) -> dict[str, Any]:
    number = {n: i for i, n in enumerate(_trainable_names(model))}
    return {"state": {number[k]: v for k, v in state["state"].items()},
            "param_groups": [{**g, "params": [number[n] for n in g["params"]]} for g in state["param_groups"]]}


def _by_name(model, state: dict[str, Any]) -> dict[str, Any]:
    names = _trainable_names(model)
    return {"state": {names[int(k)]: v for k, v in state["state"].items()},
            "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]} for g in state["param_groups"]]}


# -- out of memory ---------------------------------------------------------------------------
def ran_out(ranks: Ranks, run_dir: Path | None, plan: dict[str, Any], step: int) -> None:
    """This rank ran out of memory inside a sharded pass: the others wait in a collective
    this rank can no longer join, so no agreement is possible. Say so to the launcher (a
    file beside its stop file) and leave at once; torchrun then ends the other ranks, and
    `spread_over` restarts from the last checkpoint one step smaller. Without a launcher
    (a hand-started torchrun) the run ends with the same sentence."""
    note = {"rank": ranks.rank, "step": step, "run": str(run_dir) if run_dir else None, "plan": plan}
    stop = os.environ.get(STOP_ENV)
    if stop:
        target = Path(stop).parent / OOM_FILE
        tmp = target.with_suffix(f".{ranks.rank}.tmp")
        tmp.write_text(json.dumps(note), encoding="utf-8")
        os.replace(tmp, target)
    import sys

    print(f"Rank {ranks.rank} ran out of GPU memory at step {step + 1} of a sharded run: every rank stops; "
          + ("the run restarts from its last checkpoint with a smaller step." if stop else
             "resume it with `tunedesk resume` (it re-plans one step smaller)."), file=sys.stderr, flush=True)
    os._exit(OOM_EXIT)  # never into the process group's teardown: the others are inside a collective
