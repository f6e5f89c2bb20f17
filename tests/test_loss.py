"""Chunked linear cross-entropy equals the plain full-logits loss, value and gradients."""

import torch
import torch.nn.functional as F

from engine.data.render import IGNORE
from engine.models import loss as L


def _tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=3000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


def test_matches_full_logits_loss_and_gradients(monkeypatch):
    monkeypatch.setattr(L, "CHUNK_BYTES", 3000 * L.BYTES_PER_LOGIT * 7)  # 7 rows a chunk: many chunks
    assert L.rows_per_chunk(3000) == 32  # the floor
    model = _tiny()
    ids = torch.randint(0, 3000, (3, 40))
    mask = torch.ones_like(ids)
    mask[2, 30:] = 0
    labels = ids.clone()
    labels[:, :10] = IGNORE  # a prompt that is not trained
    labels[2, 30:] = IGNORE

    ours = L.loss_sum(model, ids, mask, labels)
    ours.backward()
    g_ours = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    logits = model(input_ids=ids, attention_mask=mask).logits
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, 3000).float(), labels[:, 1:].reshape(-1), ignore_index=IGNORE, reduction="sum")
    ref.backward()
    assert torch.allclose(ours, ref, rtol=1e-5)
    assert L.count_trained(labels) == int((labels[:, 1:] != IGNORE).sum())
    for n, p in model.named_parameters():
        assert torch.allclose(g_ours[n], p.grad, atol=1e-6, rtol=1e-4), n


def test_rows_per_chunk_bounds_the_peak():
    for vocab in (49152, 151936, 152064, 128256):
        rows = L.rows_per_chunk(vocab)
        assert 32 <= rows and rows * vocab * L.BYTES_PER_LOGIT <= L.CHUNK_BYTES
