"""Levers that make a training step faster without changing what it computes (issue 16).

The profile of a packed step on the 1.5B shape (bench/profile_steps.py, bench/README.md)
found the GPU idle three quarters of the time, waiting for the host to launch some
11,000 kernels a step, a fifth of its busy time spent casting. Each lever here removes
kernels; each was measured through `tunedesk train` (bench/throughput.py) before it was
adopted, and each falls back to the stock PyTorch path where it cannot run.

- `keep_lora_input_dtype`: peft casts every LoRA layer's input to the adapter's fp32
  before its matrix products; under autocast those products cast it straight back to
  bf16. Two copies of the layer's input per adapted linear, forward and recompute, for
  a result that is bit-identical. Skipped while autocast is on; anything outside
  autocast (fp32 on the CPU, generation) is cast as before.
- `use_fused_kernels`: liger-kernel's Triton RMSNorm and SwiGLU replace the stock
  modules of this model instance (Llama, Qwen2/3, Mistral, Gemma and the other shapes
  liger knows), and its RoPE the rotary function, for CUDA tensors only. Optional: without
  liger-kernel or Triton (Windows, the CPU, macOS) the stock modules stay.

- `fuse_lora_branches` (engine/models/lora_branch.py): each adapted linear layer, base
  product and LoRA branch, as one autograd node.
- `use_packed_attention` (engine/models/packed_attention.py): packed rows through flash
  attention's variable-length form, which computes only the pairs inside each example.
- `replayed_checkpoint`: checkpointed decoder layers run their first forward pass without
  autograd (PyTorch's reentrant checkpointing) instead of building a graph whose saved
  tensors hooks then throw away.

TUNEDESK_SLOW_PATHS=cast,fused,even,lora,varlen,reentrant (comma-separated) turns levers off (even:
packed rows filled first-fit instead of spread evenly, engine/training/stream.py): the
benchmarks measure each one against the stock path with it.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import types

import torch
from torch.utils.checkpoint import checkpoint

log = logging.getLogger(__name__)


def slow_path(lever: str) -> bool:
    """Is this lever turned off (TUNEDESK_SLOW_PATHS), so a benchmark measures the path without it?"""
    return lever in os.environ.get("TUNEDESK_SLOW_PATHS", "").split(",")


def _cast_unless_autocast(self, x, dtype):
    if x is None or x.dtype == dtype or torch.is_autocast_enabled(x.device.type):
        return x
    return x.to(dtype=dtype)


def keep_lora_input_dtype(model) -> int:
    """Every LoRA layer takes its input as it is while autocast is on. Returns the count."""
    if slow_path("cast"):
        return 0
    n = 0
    for module in model.modules():
        if hasattr(module, "lora_A") and hasattr(module, "_cast_input_dtype"):
            module._cast_input_dtype = types.MethodType(_cast_unless_autocast, module)
            n += 1
    return n


def fused_kernels_available() -> bool:
    # Ampere or newer (RTX 30xx, 40xx, 50xx): the cards liger is tested on; Triton's kernels
    # fail at their first launch, not at import, on the oldest ones (GTX 10xx).
    if slow_path("fused") or not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 0):
        return False
    try:
        importlib.import_module("triton")
        importlib.import_module("liger_kernel.transformers.monkey_patch")
    except Exception:  # not installed, or a Triton that does not load on this driver
        return False
    return True


def _rope_on_cuda_only(stock, fused):
    def apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs):
        if q.is_cuda:
            return fused(q, k, cos, sin, *args, **kwargs)
        return stock(q, k, cos, sin, *args, **kwargs)

    apply_rotary_pos_emb._tunedesk_stock = stock
    return apply_rotary_pos_emb


def use_fused_kernels(model) -> bool:
    """liger-kernel's RMSNorm, SwiGLU and RoPE in `model` (a causal LM, before LoRA is
    attached or after); True if they were applied."""
    if not fused_kernels_available():
        return False
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN, _apply_liger_kernel_to_instance

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    model_type = getattr(base.config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return False
    modeling = importlib.import_module(type(base).__module__)
    stock_rope = getattr(modeling, "apply_rotary_pos_emb", None)
    stock_rope = getattr(stock_rope, "_tunedesk_stock", stock_rope)
    try:
        # Liger's own losses stay off: TuneDesk's chunked cross-entropy (models/loss.py)
        # computes the loss from the decoder's hidden states, never calling model.forward.
        _apply_liger_kernel_to_instance(model=base, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                        fused_linear_cross_entropy=False)
    except Exception as e:  # an architecture liger half-knows: the stock modules are still right
        log.warning("liger-kernel could not patch %s (%s); keeping the stock modules", model_type, e)
        return False
    fused_rope = getattr(modeling, "apply_rotary_pos_emb", None)
    if stock_rope is not None and fused_rope is not stock_rope:
        # Liger patches the rotary function for the whole module: keep the stock one for
        # tensors on the CPU (a comparison or export in the same process).
        modeling.apply_rotary_pos_emb = _rope_on_cuda_only(stock_rope, fused_rope)
    return True


def compile_layers(model) -> int:
    """Experimental (TUNEDESK_COMPILE=1, measured by the benchmarks, off by default): each
    decoder layer through torch.compile, so its LoRA, norm and activation kernels fuse and
    launch as fewer, larger ones. Shapes change with every packed step: dynamic."""
    if os.environ.get("TUNEDESK_COMPILE") != "1" or not torch.cuda.is_available():
        return 0
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(base.get_decoder(), "layers", [])
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


# transformers' own checkpointing function with the engine's settings (non-reentrant)
stock_checkpoint = functools.partial(checkpoint, use_reentrant=False)


def _after_anchor(function, anchor, *args):
    return function(*args)


def replayed_checkpoint(function, *args):
    """A checkpointed decoder layer's call (transformers' `_gradient_checkpointing_func`:
    `function` is the layer's forward with its keywords bound, `args` the hidden states).

    Non-reentrant checkpointing, transformers' default, runs the first forward pass with
    autograd on: every operation records a node and hands each tensor it would save to a
    Python hook that drops it, ~1,800 hook calls a step on a 28-layer model. Reentrant
    checkpointing runs that pass under no_grad, so none of it happens, and replays the
    layer with autograd in the backward pass, as the other does: the same products, the
    same RNG state for dropout, one layer's activations at a time.
    Measured (bench/README.md): -42% host time a step on the 1.5B's 28 layers at a tiny
    width on the CPU (bench/host_overhead.py); on the 1.5B 12 GB plan through `tunedesk train`,
    the GPU idle 58% of a profiled step instead of 73%, median MFU 18.9% over seven runs
    (tokens/s alone does not resolve the gain from the H200's run-to-run spread), +0.05 GiB allocated.

    Reentrant checkpointing only passes gradients through positional tensors, and its
    output needs an input that requires a gradient; a frozen embedding's output does not.
    An empty `anchor` that requires one stands in (no input-gradient hook on the
    embeddings, so the first layer computes no gradient for its input, as before). Where a
    keyword tensor needs a gradient, or the layer has nothing to train, the call keeps
    non-reentrant checkpointing."""
    bound = getattr(function, "keywords", None) or {}
    # partial(forward, layer, **kwargs) (transformers 5.2x) or partial(layer.__call__, **kwargs) (5.1x)
    layer = (getattr(function, "args", None) or (getattr(getattr(function, "func", None), "__self__", None),))[0]
    trains = isinstance(layer, torch.nn.Module) and any(p.requires_grad for p in layer.parameters())
    if not trains or any(isinstance(v, torch.Tensor) and v.requires_grad for v in bound.values()):
        return stock_checkpoint(function, *args)
    anchor = torch.empty(0, requires_grad=True)
    return checkpoint(functools.partial(_after_anchor, function), anchor, *args, use_reentrant=True)


def choose_attention_kernels() -> None:
    """PyTorch picks cuDNN's attention on Hopper GPUs, whose host-side graph building costs
    ~3 ms per call of a new shape; its own flash kernel has none: +68% tokens/s on the 1.5B
    shape (bench/results/levers/), the same memory. Consumer cards (Ampere, Ada) never get
    cuDNN's kernel here anyway. TUNEDESK_SDPA=cudnn keeps it (the benchmarks measure it)."""
    if os.environ.get("TUNEDESK_SDPA") != "cudnn" and torch.cuda.is_available():
        torch.backends.cuda.enable_cudnn_sdp(False)
