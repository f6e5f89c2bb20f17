"""Packed rows through variable-length flash attention (issue 16, sixth session).

A packed row holds several examples, and each may attend only to itself. Through SDPA that
takes a [rows x tokens x tokens] block-diagonal mask; with a mask PyTorch cannot use its flash
kernel, and the memory-efficient kernel it falls back to computes every masked block anyway.
On the 1.5B plan's packed instruction rows, attention computed 4.4 times the FLOPs of the
pairs that count (17.3 against 3.9 TFLOP over two steps) and took 30% of the GPU's time
(bench/results/profile/profile_1.5b_12gb_lora_branch.json, …_varlen.json).

Flash attention's variable-length form takes the micro-batch as one list of tokens and the
examples' boundaries (cumulative lengths), and computes only the pairs inside each example.

- NAME is registered with transformers as an attention implementation. Its masks are SDPA's,
  and it runs SDPA unless a call carries the boundaries (`cu_seq_lens_q`, the keyword
  transformers' own flash path reads). Only the training loss on packed rows passes them
  (`packed_kwargs`, engine/models/loss.py): generation, padded rows and preference methods take
  SDPA's path as before.
- The kernel is PyTorch's own flash attention (aten::_flash_attention_forward, differentiable)
  on CUDA cards where it runs (Ampere or newer, bf16 / fp16). Anywhere else the same function
  runs SDPA over each example in turn: exact, and what the CPU tests exercise.
- `use_packed_attention` leaves the model on SDPA where flash cannot run or where the model's
  attention is more than plain causal (sliding windows, logit soft-capping).
TUNEDESK_SLOW_PATHS=varlen turns it off (the benchmarks measure it against the masked path).
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F

from .speed import slow_path

log = logging.getLogger(__name__)

NAME = "tunedesk_packed"


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _each_example(q, k, v, cu: list[int], scale: float | None, dropout: float) -> torch.Tensor:
    """The reference: SDPA over each example, [tokens, heads, dim] in and out."""
    group = q.shape[1] // k.shape[1]
    if group > 1:  # grouped-query attention: each key/value head serves `group` query heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    parts = [
        F.scaled_dot_product_attention(q[a:b].transpose(0, 1), k[a:b].transpose(0, 1), v[a:b].transpose(0, 1),
                                       dropout_p=dropout, is_causal=True, scale=scale).transpose(0, 1)
        for a, b in zip(cu[:-1], cu[1:]) if b > a
    ]
    return torch.cat(parts)


def _flash_runs(q: torch.Tensor) -> bool:
    return q.is_cuda and q.dtype in (torch.bfloat16, torch.float16)


def packed_attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                             scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """transformers' attention interface: query [batch, heads, tokens, dim], key / value with
    the model's key/value heads; returns ([batch, tokens, heads, dim], None)."""
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    longest = kwargs["max_length_q"]
    window = kwargs.get("sliding_window")
    if (window is not None and window < longest) or kwargs.get("softcap") is not None:
        # use_packed_attention never enables such a model; fail loudly rather than attend wrongly
        raise RuntimeError(f"{NAME}: sliding-window or soft-capped attention is not supported")
    b, h, t, d = query.shape
    q = query.transpose(1, 2).reshape(b * t, h, d)
    k = key.transpose(1, 2).reshape(b * t, key.shape[1], d)
    v = value.transpose(1, 2).reshape(b * t, value.shape[1], d)
    if _flash_runs(q):
        out = torch.ops.aten._flash_attention_forward(q, k, v, cu, cu, longest, longest, dropout, True, False,
                                                      scale=scaling)[0]
    else:
        out = _each_example(q, k, v, cu.tolist(), scaling, dropout)
    return out.view(b, t, h, d), None


def packed_kwargs(model, position_ids: torch.Tensor, device) -> dict:
    """The keywords that send a packed micro-batch through variable-length attention, from
    its position ids as collated (on the CPU, so no GPU sync): an example starts wherever
    the position is 0, and every row starts with one. {} when the model is not on NAME."""
    if getattr(_base(model).config, "_attn_implementation", None) != NAME:
        return {}
    flat = position_ids.reshape(-1).cpu()
    starts = (flat == 0).nonzero().flatten()
    cu = torch.cat([starts, starts.new_tensor([flat.numel()])]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    cu = cu.to(device, non_blocking=True)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def _attention_modules(model) -> list:
    return [m for m in _base(model).modules() if hasattr(m, "is_causal") and hasattr(m, "head_dim")]


def _model_reason(model) -> str | None:
    """Why this model's attention is not plain causal attention, if it is not."""
    cfg = _base(model).config
    if getattr(cfg, "attn_logit_softcapping", None):
        return "its attention soft-caps logits"
    # A window as long as the model's context never binds (Phi-4-mini's 262,144)
    longest = getattr(cfg, "max_position_embeddings", None) or 0
    layers = _attention_modules(model)
    if not layers:
        return "its attention modules are not ones the engine knows"
    for m in layers:
        window = getattr(m, "sliding_window", None)
        if window and window < longest or "sliding_attention" in (getattr(cfg, "layer_types", None) or ()):
            return "it has sliding-window layers"
        if not m.is_causal:
            return "its attention is not causal"
        if m.head_dim % 8 or m.head_dim > 128:
            return f"head size {m.head_dim} (flash: a multiple of 8, at most 128 on every card)"
    return None


@functools.lru_cache(maxsize=4)
def _flash_on(device_index: int, dtype: torch.dtype, head_dim: int) -> str | None:
    """Does PyTorch's flash kernel run here (forward and backward)? It is missing from some
    builds and needs an Ampere or newer card: one tiny call says so."""
    try:
        dev = torch.device("cuda", device_index)
        q = torch.randn(16, 2, head_dim, device=dev, dtype=dtype, requires_grad=True)
        cu = torch.tensor([0, 9, 16], device=dev, dtype=torch.int32)
        out = torch.ops.aten._flash_attention_forward(q, q, q, cu, cu, 9, 9, 0.0, True, False)[0]
        out.sum().backward()
        torch.cuda.synchronize(dev)
    except Exception as e:  # no kernel for this card or build
        return f"PyTorch's flash attention does not run here ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    return None


def packed_attention_unavailable(model) -> str | None:
    """Why packed rows cannot take variable-length attention on this model and machine, or None."""
    if slow_path("varlen"):
        return "turned off (TUNEDESK_SLOW_PATHS=varlen)"
    param = next(iter(model.parameters()), None)
    if param is None or not param.is_cuda or not hasattr(torch.ops.aten, "_flash_attention_forward"):
        return "not on a CUDA GPU"
    reason = _model_reason(model)
    if reason:
        return reason
    dtype = getattr(_base(model).config, "dtype", None) or torch.bfloat16
    if dtype not in (torch.bfloat16, torch.float16):
        dtype = torch.bfloat16
    head_dim = _attention_modules(model)[0].head_dim
    return _flash_on(param.device.index or 0, dtype, head_dim)


def enable_packed_attention(model) -> None:
    """Put `model` (a causal LM, peft-wrapped or not) on NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, packed_attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    _base(model).set_attn_implementation(NAME)


def use_packed_attention(model) -> bool:
    """Variable-length attention for packed rows where it runs; True if the model now uses it."""
    reason = packed_attention_unavailable(model)
    if reason:
        log.info("packed rows keep SDPA's masked attention: %s", reason)
        return False
    enable_packed_attention(model)
    return True
