"""Lean memory: what buys sequence length once 4-bit weights, checkpointing, 8-bit
AdamW and the embedding table in RAM are not enough (7B / 8B models on 8 and 12 GB cards).

Measured on the 7B / 8B shapes at 8,192 tokens (bench/levers.py, bench/README.md):
- `offload_checkpoints`: every decoder layer's input, kept on the GPU for its recompute
  (layers x tokens x hidden: 1.5 GiB for a 7B at 8,192 tokens), waits in pinned RAM
  instead; one device-to-host copy per layer in the forward pass, one back in the
  backward. -1.45 GiB, 9% slower.
- `no_lora_dropout`: with dropout every adapted layer saves a dropped copy of its input
  for the recomputed layer. -0.29 GiB at 8,192 tokens, nothing at 2,048.
(Running the MLP over checkpointed tiles was measured too and left out: bench/README.md.)

Both are pure PyTorch (torch.autograd.graph.save_on_cpu around torch.utils.checkpoint)
and exact: gradients equal those of the plain checkpointed model (tests/test_lean.py).
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def _offloaded_checkpoint(function, *args, **kwargs):
    # save_on_cpu only sees what checkpoint itself saves outside its own hooks: the
    # layer's inputs. Everything saved inside the layer is dropped and recomputed anyway.
    with torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available()):
        return checkpoint(function, *args, use_reentrant=False, **kwargs)


def offload_checkpoints(model) -> int:
    """Keep checkpointed layers' inputs in RAM. Call after gradient checkpointing is
    enabled (transformers sets `_gradient_checkpointing_func` on each layer then).
    Returns the number of layers changed."""
    n = 0
    for module in model.modules():
        if hasattr(module, "_gradient_checkpointing_func"):
            module._gradient_checkpointing_func = _offloaded_checkpoint
            n += 1
    return n


def no_lora_dropout(model) -> int:
    """Replace every LoRA layer's dropout by the identity. Returns the number changed."""
    n = 0
    for module in model.modules():
        drop = getattr(module, "lora_dropout", None)
        if isinstance(drop, torch.nn.ModuleDict):
            for name in list(drop.keys()):
                if not isinstance(drop[name], torch.nn.Identity):
                    drop[name] = torch.nn.Identity()
                    n += 1
    return n


def make_lean(model) -> None:
    """Both levers, on a model with LoRA attached and checkpointing enabled."""
    no_lora_dropout(model)
    offload_checkpoints(model)
