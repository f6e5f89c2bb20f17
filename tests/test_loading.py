"""Embeddings in RAM (engine/models/loading.py): the table really stays in RAM. accelerate's
device map offloads a "cpu" module to the meta device and copies its weight to the
execution device on every forward; look_up_in_ram undoes that and looks rows up in place."""

import pytest
import torch
from accelerate import dispatch_model
from test_lean import _tiny

from engine.config import LoraConfig
from engine.models.loading import add_lora, look_up_in_ram


def _offloaded(folder):
    """A model dispatched the way from_pretrained does with device_map {embed_tokens: "cpu",
    "": gpu}: the table on the meta device, copied to the execution device per forward.
    Without a GPU the execution device is the CPU and "disk" is what accelerate offloads."""
    model = _tiny()
    table = model.model.embed_tokens.weight.detach().clone()
    model = dispatch_model(model, {"model.embed_tokens": "disk", "": "cpu"}, offload_dir=str(folder))
    emb = model.model.embed_tokens
    assert emb.weight.device.type == "meta"
    assert len(emb._hf_hook.hooks) == 2  # dispatch_model leaves a SequentialHook there
    model.hf_device_map = {"model.embed_tokens": "cpu", "": 0}  # what from_pretrained records on a GPU
    return model, table


def test_an_offloaded_embedding_table_is_materialized_in_ram_and_looked_up_there(tmp_path):
    model, table = _offloaded(tmp_path)
    ids = torch.tensor([[1, 5, 499, 7]])

    look_up_in_ram(model, "model.embed_tokens", torch.device("cpu"))

    emb = model.model.embed_tokens
    assert not hasattr(emb, "_hf_hook")  # no copy of the table per forward any more
    assert emb.weight.device.type == "cpu" and not emb.weight.requires_grad
    assert torch.equal(emb.weight, table)
    out = emb(ids)
    assert torch.equal(out, table[ids])


def test_loading_a_saved_adapter_leaves_the_table_in_ram(tmp_path, monkeypatch):
    """The chat loads the tuned model with PeftModel.from_pretrained. On the GPU (a random
    Llama-8B, 8 GB plan) it found "cpu" in the device map, stripped the hooks and dispatched
    the model again: the table went back to the GPU and every answer failed with "index is
    on cpu, different from other tensors on cuda:0". On this CPU-only machine that
    dispatch would move nothing, so the test fails if peft dispatches at all."""
    import peft.peft_model
    from peft import PeftModel

    add_lora(_tiny(), LoraConfig(r=4, alpha=8), gradient_checkpointing=False).save_pretrained(tmp_path / "adapter")
    model, table = _offloaded(tmp_path / "offload")
    look_up_in_ram(model, "model.embed_tokens", torch.device("cpu"))

    def dispatch(*_a, **_k):
        pytest.fail("peft dispatched the model again")

    monkeypatch.setattr(peft.peft_model, "dispatch_model", dispatch)
    tuned = PeftModel.from_pretrained(model, tmp_path / "adapter")

    emb = tuned.get_base_model().model.embed_tokens
    assert emb.weight.device.type == "cpu" and torch.equal(emb.weight, table)
    assert tuned.generate(input_ids=torch.tensor([[1, 5, 7]]), max_new_tokens=3, do_sample=False).shape == (1, 6)


def test_norms_of_a_quantized_model_hand_the_compute_dtype_on():
    """Autocast runs layer_norm in fp32 and bitsandbytes' linears return their input's
    dtype: without the hook a LayerNorm model in 4 bits carries fp32 through every layer."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from engine.models.loading import keep_norms_in

    cfg = GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    model = GPTNeoXForCausalLM(cfg)
    norm = model.gpt_neox.layers[0].input_layernorm
    x = torch.randn(1, 3, 32)
    assert norm(x).dtype == torch.float32  # what autocast's fp32 layer_norm hands on, on a GPU
    assert keep_norms_in(model, torch.bfloat16) == 2 * 2 + 1  # two per layer and the final one
    assert norm(x).dtype == torch.bfloat16
