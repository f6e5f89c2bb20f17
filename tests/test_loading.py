"""Embeddings in RAM (engine/loading.py): the table really stays in RAM. accelerate's
device map offloads a "cpu" module to the meta device and copies its weight to the
execution device on every forward; look_up_in_ram undoes that and looks rows up in place."""

import torch
from accelerate import cpu_offload
from accelerate.hooks import ModelHook, add_hook_to_module
from test_lean import _tiny

from engine.loading import look_up_in_ram


def test_an_offloaded_embedding_table_is_materialized_in_ram_and_looked_up_there():
    model = _tiny()
    ids = torch.tensor([[1, 5, 499, 7]])
    table = model.model.embed_tokens.weight.detach().clone()
    cpu_offload(model, execution_device="cpu")  # what a device map with "cpu" does
    emb = model.model.embed_tokens
    add_hook_to_module(emb, ModelHook(), append=True)  # dispatch_model leaves a SequentialHook
    assert emb.weight.device.type == "meta" and hasattr(emb, "_hf_hook")

    look_up_in_ram(emb, torch.device("cpu"))

    assert not hasattr(emb, "_hf_hook")  # no copy of the table per forward any more
    assert emb.weight.device.type == "cpu" and not emb.weight.requires_grad
    assert torch.equal(emb.weight, table)
    out = emb(ids)
    assert torch.equal(out, table[ids])
