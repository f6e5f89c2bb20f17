"""A resumable checkpoint: the adapter, the trainer's state (optimizer, scheduler, loss
scaler, data position), every random generator and the plan it was taken under, in one
folder written atomically (a crash mid-write leaves the previous checkpoint whole)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_dir, write_json
from ..fit.card_fit import PLAN_FILE

STATE_FILE = "trainer_state.pt"
ADAPTER_FILE = "adapter_model.safetensors"


def write(target: Path, model, state: dict[str, Any], plan_record: dict[str, Any], adapter: dict | None = None) -> Path:
    """`state`: the trainer's own (JSON-able numbers and state dicts of tensors). `adapter`:
    the LoRA weights gathered whole from a sharded model (None: the model's own)."""
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, **({} if adapter is None else {"state_dict": adapter}))
        torch.save({**state, "rng_torch": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "rng_python": list(random.getstate()[1])}, tmp / STATE_FILE)
        write_json(tmp / PLAN_FILE, plan_record)
    return target


def read(checkpoint: Path, model, device, load_adapter=None) -> dict[str, Any]:
    """Load the adapter into `model` (through `load_adapter(model, weights)`: a sharded
    model scatters them) and the random generators; the trainer's state back."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    (load_adapter or set_peft_model_state_dict)(model, load_file(checkpoint / ADAPTER_FILE, device=str(device)))
    state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)  # our own file, tensors only
    torch.set_rng_state(state["rng_torch"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    random.setstate((3, tuple(state["rng_python"]), None))
    return state
