"""Packed rows through variable-length attention (engine/models/packed_attention.py) give the
masked SDPA path's loss and gradients; every other call keeps SDPA.

The CPU has no flash kernel, so these run the module's own per-example SDPA in its place: they
check what the engine adds (the boundaries, the layout, grouped-query heads, the keywords
reaching every layer through checkpointing), and bench/packed_attention_check.py checks the
flash kernel itself against the masked path on the GPU."""

import copy

import pytest
import torch

from engine.config import LoraConfig
from engine.data.batching import collate_packed
from engine.data.example import Example
from engine.models import packed_attention as pa
from engine.models.loading import add_lora
from engine.models.loss import batch_loss_sum


def _tiny(family: str):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    shape = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2)  # grouped-query, as both families ship
    if family == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**shape))
    return LlamaForCausalLM(LlamaConfig(**shape))


def _with_lora(family: str, lean: bool = False):
    model = add_lora(_tiny(family), LoraConfig(r=4, alpha=8, dropout=0.0), gradient_checkpointing=True, lean=lean)
    for n, p in model.named_parameters():
        if p.requires_grad:  # give B values so every adapter gets a gradient
            p.data.normal_(0, 0.05, generator=torch.Generator().manual_seed(hash(n) % 1000))
    return model


def _packed_batch():
    rng = torch.Generator().manual_seed(5)
    ex = [Example(i, torch.randint(0, 300, (n,), generator=rng).numpy(), (torch.arange(n) > 2).numpy())
          for i, n in enumerate([9, 14, 5, 20, 7, 11])]
    # three examples in the first row, two and padding in the second, one long one and padding
    return collate_packed([ex[:3], ex[3:5], ex[5:]], pad_id=0, multiple=8)


def _grads(model, batch):
    model.train()
    model.zero_grad()
    loss = batch_loss_sum(model, batch, torch.device("cpu"))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family,lean", [("llama", False), ("qwen2", False), ("llama", True)])
def test_packed_rows_give_the_masked_paths_loss_and_gradients(family, lean, monkeypatch):
    # lean: the small-card path, each layer's input offloaded to RAM and its MLP in tiles
    masked = _with_lora(family, lean)
    packed = _with_lora(family, lean)  # the same seeds: the same model (lean's MLP tiles do not survive a deepcopy)
    pa.enable_packed_attention(packed)
    calls = []
    real = pa._each_example
    monkeypatch.setattr(pa, "_each_example", lambda q, k, v, cu, *a: calls.append(list(cu)) or real(q, k, v, cu, *a))
    batch = _packed_batch()

    loss_masked, grads_masked = _grads(masked, batch)
    assert not calls  # the stock model never reaches the variable-length path
    loss_packed, grads_packed = _grads(packed, batch)

    width = batch["input_ids"].shape[1]
    bounds = [0, 9, 23, 28, width, width + 20, width + 27, 2 * width, 2 * width + 11, 3 * width]
    # every layer, in the forward pass and in checkpointing's recompute, with the examples' bounds
    assert calls == [bounds] * (2 * 2)
    assert torch.allclose(loss_packed, loss_masked, rtol=1e-5)
    assert grads_packed.keys() == grads_masked.keys() and len(grads_packed) == 2 * 7 * 2
    for n in grads_masked:
        assert torch.allclose(grads_packed[n], grads_masked[n], rtol=1e-4, atol=1e-6), n
    # the check can fail: with each row as one example (attending across its examples) the
    # same tolerances catch the difference
    row_bounds = [0, width, 2 * width, 3 * width]
    monkeypatch.setattr(pa, "_each_example", lambda q, k, v, cu, *a: real(q, k, v, row_bounds, *a))
    _, grads_across = _grads(packed, batch)
    assert any(not torch.allclose(grads_across[n], grads_masked[n], rtol=1e-4, atol=1e-6) for n in grads_masked)


def test_calls_without_boundaries_keep_sdpa_exactly(monkeypatch):
    stock = _tiny("qwen2").eval()
    model = copy.deepcopy(stock)
    pa.enable_packed_attention(model)
    assert model.config._attn_implementation == pa.NAME
    monkeypatch.setattr(pa, "_each_example", lambda *a: pytest.fail("variable-length path taken"))
    ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # right padding: SDPA's own mask
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, stock(input_ids=ids, attention_mask=mask).logits)
        out = model.generate(ids[:1, :5], max_new_tokens=4, do_sample=False)
        assert torch.equal(out, stock.generate(ids[:1, :5], max_new_tokens=4, do_sample=False))


def test_boundaries_come_from_the_position_ids_and_only_for_a_model_on_the_kernel():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 0, 1], [0, 1, 2, 3, 4, 0, 1, 2]])
    model = _tiny("llama")
    assert pa.packed_kwargs(model, pos, torch.device("cpu")) == {}  # still on SDPA
    pa.enable_packed_attention(model)
    kw = pa.packed_kwargs(model, pos, torch.device("cpu"))
    assert kw["cu_seq_lens_q"].tolist() == [0, 3, 5, 6, 8, 13, 16] and kw["cu_seq_lens_q"].dtype == torch.int32
    assert kw["cu_seq_lens_k"] is kw["cu_seq_lens_q"] and kw["max_length_q"] == kw["max_length_k"] == 5


def test_the_kernel_is_used_only_where_it_runs_and_attention_is_plain(monkeypatch):
    from transformers import Gemma2Config, Gemma2ForCausalLM, Qwen2Config, Qwen2ForCausalLM

    llama = _tiny("llama")
    assert pa.packed_attention_unavailable(llama) == "not on a CUDA GPU"
    assert pa.use_packed_attention(llama) is False and llama.config._attn_implementation == "sdpa"
    monkeypatch.setenv("TUNEDESK_SLOW_PATHS", "varlen")
    assert "TUNEDESK_SLOW_PATHS" in pa.packed_attention_unavailable(llama)
    assert pa._model_reason(llama) is None
    small = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=16)
    sliding = Qwen2ForCausalLM(Qwen2Config(**small, use_sliding_window=True, sliding_window=8, max_window_layers=0))
    assert pa._model_reason(sliding) == "it has sliding-window layers"
    assert pa._model_reason(Gemma2ForCausalLM(Gemma2Config(**small))) == "its attention soft-caps logits"
    wide = Qwen2ForCausalLM(Qwen2Config(**{**small, "hidden_size": 512, "num_attention_heads": 2, "head_dim": 256}))
    assert pa._model_reason(wide).startswith("head size 256")


def test_a_model_whose_layers_drop_the_boundaries_still_attends_inside_each_example(monkeypatch):
    """StableLM's decoder layers do not pass keywords on to their attention (transformers 5.x):
    the boundaries never arrive, and the block-diagonal mask that NAME still builds keeps it right."""
    from transformers import StableLmConfig, StableLmForCausalLM

    torch.manual_seed(0)
    stock = StableLmForCausalLM(StableLmConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                               num_attention_heads=4, num_key_value_heads=4)).train()
    model = copy.deepcopy(stock)
    pa.enable_packed_attention(model)
    monkeypatch.setattr(pa, "_each_example", lambda *a: pytest.fail("boundaries arrived"))
    batch = _packed_batch()
    with torch.no_grad():
        assert torch.equal(batch_loss_sum(model, batch, torch.device("cpu")), batch_loss_sum(stock, batch, torch.device("cpu")))
