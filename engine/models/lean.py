"""Lean memory: what buys sequence length once 4-bit weights, checkpointing, 8-bit
AdamW and the embedding table in RAM are not enough (7B / 8B models on 8 and 12 GB cards).

Measured on the 7B / 8B shapes at 8,192 tokens (bench/levers.py, bench/README.md):
- `offload_checkpoints`: every decoder layer's input, kept on the GPU for its recompute
  (layers x tokens x hidden: 1.5 GiB for a 7B at 8,192 tokens), waits in pinned RAM
  instead; one device-to-host copy per layer in the forward pass, one back in the
  backward. -1.45 GiB, 9% slower.
- `no_lora_dropout`: with dropout every adapted layer saves a dropped copy of its input
  for the recomputed layer. -0.29 GiB at 8,192 tokens, nothing at 2,048.
- `tile_mlps`: every decoder layer's MLP runs over the sequence in tiles of MLP_TILE
  tokens, in the forward pass and in the recompute, each tile checkpointed: the MLP's
  intermediates (4 x intermediate size per token: 115 KB per token on an 8B) exist for
  one tile at a time instead of the whole sequence. Position-wise, so exact. An earlier
  try tiled only the recompute and measured no change: the forward pass held them too.

Both are pure PyTorch (torch.autograd.graph.save_on_cpu around torch.utils.checkpoint)
and exact: gradients equal those of the plain checkpointed model (tests/test_lean.py).
"""

from __future__ import annotations

import os

import torch
from torch.utils.checkpoint import checkpoint

# Tokens per MLP tile: big enough for full-speed matrix products. TUNEDESK_MLP_TILE=0
# turns tiling off (benchmarks measure the lever with it).
MLP_TILE = int(os.environ.get("TUNEDESK_MLP_TILE", "2048"))


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


def _tiled(forward, tile: int):
    def run(x, *args, **kwargs):
        if x.dim() != 3 or x.shape[1] <= tile:
            return forward(x, *args, **kwargs)
        pieces = x.split(tile, dim=1)
        if torch.is_grad_enabled():
            return torch.cat([checkpoint(forward, p, *args, use_reentrant=False, **kwargs) for p in pieces], dim=1)
        return torch.cat([forward(p, *args, **kwargs) for p in pieces], dim=1)

    run.tunedesk_tiled = True
    return run


def tile_mlps(model, tile: int = MLP_TILE) -> int:
    """Run each decoder layer's MLP (a module named `mlp`) over the sequence in tiles.
    Returns the number of MLPs changed (0 when tiling is off)."""
    if tile <= 0:
        return 0
    n = 0
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == "mlp" and not getattr(module.forward, "tunedesk_tiled", False):
            module.forward = _tiled(module.forward, tile)
            n += 1
    return n


def make_lean(model) -> None:
    """Every lever, on a model with LoRA attached and checkpointing enabled."""
    no_lora_dropout(model)
    offload_checkpoints(model)
    tile_mlps(model)
