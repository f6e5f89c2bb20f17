"""Lean memory mode (engine/models/lean.py) changes where activations live, never the result:
the loss and every LoRA gradient equal those of plain gradient checkpointing."""

import copy

import pytest
import torch

from engine.config import LoraConfig
from engine.models import lean
from engine.models.loading import add_lora
from engine.models.loss import loss_sum


def _tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=500, hidden_size=32, intermediate_size=96, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


def _grads(model, ids, mask):
    model.train()
    loss = loss_sum(model, ids, mask, ids)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.fixture
def pair():
    base = _tiny()
    plain = add_lora(copy.deepcopy(base), LoraConfig(r=4, alpha=8, dropout=0.0), gradient_checkpointing=True)
    lean_model = add_lora(copy.deepcopy(base), LoraConfig(r=4, alpha=8, dropout=0.1), gradient_checkpointing=True, lean=True)
    # The same LoRA weights in both (B is zero at init, so give it values: gradients then reach A).
    torch.manual_seed(1)
    for (n, p), (n2, q) in zip(plain.named_parameters(), lean_model.named_parameters()):
        assert n == n2
        if p.requires_grad:
            p.data.normal_(0, 0.02)
            q.data.copy_(p.data)
    return plain, lean_model


def test_lean_model_has_every_lever(pair):
    _, model = pair
    layers = model.get_base_model().model.layers
    assert all(layer._gradient_checkpointing_func is lean._offloaded_checkpoint for layer in layers)
    drops = [m.lora_dropout["default"] for m in model.modules() if hasattr(m, "lora_dropout")]
    assert drops and all(isinstance(d, torch.nn.Identity) for d in drops)  # dropout 0.1 was asked, lean turns it off


def test_lean_gradients_equal_plain_checkpointing(pair, monkeypatch):
    plain, lean_model = pair
    ids = torch.randint(0, 500, (2, 40))
    mask = torch.ones_like(ids)
    mask[1, 33:] = 0
    offloaded = []  # the shapes that go through save_on_cpu's pack hook (a no-op move on the CPU)

    def counting_save_on_cpu(pin_memory=False):
        return torch.autograd.graph.saved_tensors_hooks(lambda t: offloaded.append(tuple(t.shape)) or t.cpu(), lambda t: t)

    monkeypatch.setattr(torch.autograd.graph, "save_on_cpu", counting_save_on_cpu)
    loss_a, g_a = _grads(plain, ids, mask)
    assert offloaded == []
    loss_b, g_b = _grads(lean_model, ids, mask)
    assert offloaded == [(2, 40, 32)] * 3  # each layer's input, and nothing from inside the layers
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    assert g_a.keys() == g_b.keys() and len(g_a) == 2 * 7 * 3  # A and B of 7 linears x 3 layers
    for n in g_a:
        assert torch.allclose(g_a[n], g_b[n], rtol=1e-4, atol=1e-7), n


def test_tiled_mlps_give_the_same_loss_and_gradients(pair):
    """MLP tiles (checkpointed inside the checkpointed layer) only change when the MLP's
    intermediates exist, never what is computed: 40 tokens in tiles of 16."""
    plain, _ = pair
    tiled = copy.deepcopy(plain)
    assert lean.tile_mlps(tiled, tile=16) == 3 and lean.tile_mlps(tiled, tile=16) == 0  # once per MLP
    calls = []
    mlp = tiled.get_base_model().model.layers[0].mlp
    mlp.down_proj.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[1]))
    ids = torch.randint(0, 500, (2, 40))
    mask = torch.ones_like(ids)
    loss_a, g_a = _grads(plain, ids, mask)
    loss_b, g_b = _grads(tiled, ids, mask)
    assert calls[:3] == [16, 16, 8]  # the forward pass ran in tiles
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    for n in g_a:
        assert torch.allclose(g_a[n], g_b[n], rtol=1e-4, atol=1e-7), n
