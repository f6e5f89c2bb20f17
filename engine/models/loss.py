"""Causal-LM loss as a sum over trained tokens, without the full logits.

Summing (not averaging) per micro-batch and dividing by the trained tokens of the whole
accumulation window gives every token the same weight, however the window is split
into micro-batches (HF's per-batch mean does not).

Chunked linear cross-entropy: the decoder's hidden states go through the output head a
few hundred rows at a time, only at positions that carry loss, and each chunk's logits
are recomputed in the backward pass instead of stored (activation checkpointing). A
150k-token vocabulary never exists as a [tokens x vocab] tensor, in bf16 or fp32: the
peak is one chunk, about CHUNK_BYTES. Pure PyTorch, so it runs on CPU and on any GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..data.render import IGNORE
from .packed_attention import packed_kwargs

CHUNK_BYTES = 256 * 1024**2
BYTES_PER_LOGIT = 14  # bf16 logits + fp32 copy + fp32 softmax gradient + bf16 gradient, per chunk element


def rows_per_chunk(vocab: int) -> int:
    return int(max(32, min(4096, CHUNK_BYTES // (vocab * BYTES_PER_LOGIT))))


def _ce_chunk(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
    logits = F.linear(h, weight, bias).float()
    return F.cross_entropy(logits, y, reduction="sum")


def chunked_ce_sum(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor) -> torch.Tensor:
    """Sum of cross-entropy of head(hidden[i]) against targets[i]; hidden is [N, H]."""
    weight, bias = head.weight, getattr(head, "bias", None)
    rows = rows_per_chunk(weight.shape[0])
    total = hidden.new_zeros((), dtype=torch.float32)
    for a in range(0, targets.numel(), rows):
        h, y = hidden[a : a + rows], targets[a : a + rows]
        if torch.is_grad_enabled():
            total = total + checkpoint(_ce_chunk, h, weight, bias, y, use_reentrant=False)
        else:
            total = total + _ce_chunk(h, weight, bias, y)
    return total


def _logp_chunk(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor,
                temperature: float = 1.0) -> torch.Tensor:
    return -F.cross_entropy(F.linear(h, weight, bias).float() / temperature, y, reduction="none")


def token_logps(model, input_ids: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of every token whose label is not IGNORE, given the tokens before it
    (fp32, row-major order), under the distribution sampled from (logits / temperature, as
    TRL's GRPO scores its samples): chunked through the head like the loss, so no full
    logits. Right-padded rows need no attention mask (see batch_loss_sum)."""
    decoder, head = lm_parts(model)
    hidden = decoder(input_ids=input_ids, use_cache=False).last_hidden_state  # (a cache only costs memory here)
    y = labels[:, 1:].to(hidden.device)
    keep = y != IGNORE
    h, y = hidden[:, :-1][keep], y[keep]
    weight, bias = head.weight, getattr(head, "bias", None)
    rows = rows_per_chunk(weight.shape[0])
    parts = []
    for a in range(0, y.numel(), rows):
        args = (h[a : a + rows], weight, bias, y[a : a + rows], temperature)
        parts.append(checkpoint(_logp_chunk, *args, use_reentrant=False) if torch.is_grad_enabled() else _logp_chunk(*args))
    return torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)


def lm_parts(model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(decoder, output head) of a causal LM, through a peft wrapper if there is one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def loss_sum(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor,
             position_ids: torch.Tensor | None = None, **attention_kwargs) -> torch.Tensor:
    """Sum of next-token cross-entropy over positions whose label is not IGNORE.
    With position_ids (packed rows) the attention mask must be None: transformers then
    keeps attention inside each example (engine/data/batching.py); `attention_kwargs`
    (packed_attention.packed_kwargs) give the examples' boundaries to a variable-length kernel."""
    decoder, head = lm_parts(model)
    # use_cache=False whatever the config says (chat turns it on): transformers looks for
    # packed rows in the position ids only when there is no KV cache, and a cache made
    # here would let packed examples attend to each other.
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                     use_cache=False, **attention_kwargs).last_hidden_state
    y = labels[:, 1:].to(hidden.device)
    keep = y != IGNORE
    return chunked_ce_sum(hidden[:, :-1][keep], head, y[keep])


def batch_loss_sum(model, batch: dict[str, torch.Tensor], device) -> torch.Tensor:
    """loss_sum of a collated batch (engine/data/batching.py): right-padded rows, or packed
    rows with their position ids. Neither needs an attention mask: with causal attention
    a real token only sees the tokens before it, and right padding comes after every real
    one (its positions carry no loss). Without a mask transformers runs SDPA's causal
    kernels; with one it builds a [batch x tokens x tokens] mask (0.5 GiB for 3 rows of
    9k tokens, measured: calibration without padding missed it) and slower kernels."""
    if "position_ids" not in batch:
        return loss_sum(model, batch["input_ids"].to(device), None, batch["labels"])
    return loss_sum(model, batch["input_ids"].to(device), None, batch["labels"], batch["position_ids"].to(device),
                    **packed_kwargs(model, batch["position_ids"], device))


def count_trained(labels: torch.Tensor) -> int:
    return int((labels[:, 1:] != IGNORE).sum())


def _ce_tokens(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.linear(h, weight, bias).float(), y, reduction="none")


def sequence_logps(model, batch: dict[str, torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-probability of each row's trained tokens [rows], trained tokens per row [rows])
    of a right-padded collated batch: the per-sequence form of loss_sum that preference
    methods compare, through the same chunked head (one chunk of logits at a time, recomputed
    in the backward pass)."""
    decoder, head = lm_parts(model)
    ids = batch["input_ids"].to(device)
    hidden = decoder(input_ids=ids, attention_mask=None, use_cache=False).last_hidden_state
    y = batch["labels"][:, 1:].to(hidden.device)
    keep = y != IGNORE
    rows = keep.nonzero()[:, 0]
    h, t = hidden[:, :-1][keep], y[keep]
    weight, bias = head.weight, getattr(head, "bias", None)
    step = rows_per_chunk(weight.shape[0])
    parts = []
    for a in range(0, t.numel(), step):
        args = (h[a : a + step], weight, bias, t[a : a + step])
        parts.append(checkpoint(_ce_tokens, *args, use_reentrant=False) if torch.is_grad_enabled() else _ce_tokens(*args))
    ce = torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)
    logps = torch.zeros(ids.shape[0], dtype=torch.float32, device=hidden.device).index_add(0, rows, -ce)
    return logps, keep.sum(1)
