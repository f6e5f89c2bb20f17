"""The speed levers (engine/models/speed.py) change how a step runs, never its result."""

import copy

import pytest
import torch

from engine.config import LoraConfig
from engine.models import speed
from engine.models.loading import add_lora
from engine.models.loss import loss_sum


def _tiny_bf16_with_lora(monkeypatch, slow: str, dropout: float = 0.0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    base = LlamaForCausalLM(cfg).to(torch.bfloat16)  # frozen weights in the compute dtype, as on a GPU
    monkeypatch.setenv("TUNEDESK_SLOW_PATHS", slow)
    model = add_lora(base, LoraConfig(r=4, alpha=8, dropout=dropout), gradient_checkpointing=True)
    for n, p in model.named_parameters():
        if p.requires_grad:  # peft keeps the adapter in fp32; give B values so gradients reach A
            p.data.normal_(0, 0.05, generator=torch.Generator().manual_seed(hash(n) % 1000))
    return model


def _step(model, ids, autocast: bool = True):
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = loss_sum(model, ids, None, ids)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_lora_input_kept_in_bf16_under_autocast_gives_the_same_loss_and_gradients(monkeypatch):
    stock = _tiny_bf16_with_lora(monkeypatch, "cast,lora")  # peft's path, where the cast happens
    fast = copy.deepcopy(stock)
    assert speed.keep_lora_input_dtype(stock) == 0  # switched off: peft's own cast stays
    monkeypatch.setenv("TUNEDESK_SLOW_PATHS", "")
    assert speed.keep_lora_input_dtype(fast) == 2 * 7  # every adapted linear of both layers
    seen = []
    first_lora = next(m for m in fast.modules() if hasattr(m, "lora_A"))
    first_lora.lora_A["default"].register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    ids = torch.randint(0, 300, (2, 24), generator=torch.Generator().manual_seed(3))
    loss_stock, grads_stock = _step(stock, ids)
    loss_fast, grads_fast = _step(fast, ids)
    assert seen and set(seen) == {torch.bfloat16}  # no fp32 copy of the input (forward and recompute)
    assert torch.equal(loss_stock, loss_fast)
    assert grads_stock.keys() == grads_fast.keys() and grads_fast
    for n in grads_stock:
        assert torch.equal(grads_stock[n], grads_fast[n]), n


@pytest.mark.parametrize("autocast,dropout", [(True, 0.0), (True, 0.1), (False, 0.1), (False, 0.0)])
def test_lora_branch_as_one_node_gives_peft_s_loss_and_gradients(monkeypatch, autocast, dropout):
    from engine.models.lora_branch import LoraBranch

    stock = _tiny_bf16_with_lora(monkeypatch, "lora", dropout)
    fused = _tiny_bf16_with_lora(monkeypatch, "", dropout)
    if not autocast:  # fp32 on the CPU, as TuneDesk trains there
        stock, fused = stock.float(), fused.float()
    nodes, runs = [], []
    for m in fused.modules():
        if hasattr(m, "lora_A"):
            m.register_forward_hook(lambda m, i, out: nodes.append(type(out.grad_fn).__name__) if out.requires_grad else None)
    forward = LoraBranch.forward
    monkeypatch.setattr(LoraBranch, "forward", staticmethod(lambda *a: runs.append(1) or forward(*a)))
    ids = torch.randint(0, 300, (2, 24), generator=torch.Generator().manual_seed(3))
    results = []
    for model in (stock, fused):
        torch.manual_seed(7)  # the same dropout masks: both paths draw them in the same order
        results.append(_step(model, ids, autocast))
    (loss_stock, grads_stock), (loss_fused, grads_fused) = results
    # every adapted linear (2 layers x 7) as the node, in the first pass (checkpointing's,
    # without autograd) and in its replay (with it)
    assert set(nodes) == {LoraBranch.__name__ + "Backward"} and len(nodes) == 2 * 7
    assert len(runs) == 2 * 2 * 7
    tol = 2e-2 if autocast else 1e-5  # bf16: the same products, summed in another order
    assert torch.allclose(loss_stock, loss_fused, rtol=tol)
    assert grads_stock.keys() == grads_fused.keys() and len(grads_fused) == 2 * 2 * 7
    for n in grads_stock:
        assert torch.allclose(grads_stock[n], grads_fused[n], rtol=tol, atol=tol * grads_stock[n].abs().max()), n


@pytest.mark.parametrize("quantized_base,dropped", [(False, False), (False, True), (True, False), (True, True)])
def test_lora_branch_backward_is_the_derivative_of_its_forward(quantized_base, dropped):
    # float64 gradcheck of the hand-written backward, in every mode the layer call uses:
    # plain base computed inside or a base output given (bitsandbytes layers), the branch
    # reading x itself or a dropped copy of it
    from engine.models.lora_branch import LoraBranch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    weight, bias = torch.randn(4, 5, dtype=torch.float64, generator=g), torch.randn(4, dtype=torch.float64, generator=g)
    a = torch.randn(2, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, 2, dtype=torch.float64, generator=g, requires_grad=True)

    def layer(x, a, b):
        x_drop = x * 0.5 if dropped else None  # any other function of x stands for the dropout
        base_out = x @ weight.t() + bias if quantized_base else None
        return LoraBranch.apply(x, x_drop, a, b, 1.5, torch.float64, base_out,
                                None if quantized_base else weight, None if quantized_base else bias)

    assert torch.allclose(layer(x, a, b), x @ weight.t() + bias + 1.5 * ((x * (0.5 if dropped else 1)) @ a.t()) @ b.t())
    assert torch.autograd.gradcheck(layer, (x, a, b))


def test_lora_branch_leaves_generation_and_the_disabled_adapter_to_peft(monkeypatch):
    fused = _tiny_bf16_with_lora(monkeypatch, "").float()
    stock = _tiny_bf16_with_lora(monkeypatch, "lora").float()
    ids = torch.randint(0, 300, (1, 8))
    fused.eval()
    stock.eval()
    with torch.no_grad():
        assert torch.equal(fused(input_ids=ids).logits, stock(input_ids=ids).logits)
        adapted = stock(input_ids=ids).logits
        with stock.disable_adapter():
            base = stock(input_ids=ids).logits
    fused.train()  # a training-mode call with gradients: the node would run, but the adapter is off
    with fused.disable_adapter():  # (DPO's reference model: the base alone)
        assert torch.equal(fused(input_ids=ids).logits.detach(), base)
    assert not torch.allclose(base, adapted)


def test_outside_autocast_the_input_is_still_cast_to_the_adapters_dtype(monkeypatch):
    model = _tiny_bf16_with_lora(monkeypatch, "")
    model.eval()
    ids = torch.randint(0, 300, (1, 8))
    with torch.no_grad():  # bf16 activations into fp32 adapters, no autocast: peft's cast must still happen
        out = model(input_ids=ids).logits
    assert torch.isfinite(out.float()).all()


def test_fused_kernels_fall_back_to_the_stock_modules_without_cuda(monkeypatch):
    model = _tiny_bf16_with_lora(monkeypatch, "")
    norm = type(model.get_base_model().model.norm)
    assert not speed.fused_kernels_available()  # this machine: no CUDA
    assert speed.use_fused_kernels(model) is False
    assert type(model.get_base_model().model.norm) is norm


def test_rounded_batch_widths_add_only_padding_and_never_pass_the_plans_length(monkeypatch):
    from engine.data.batching import collate_packed, padded_width
    from engine.data.example import Example
    from engine.training.stream import step_batches

    assert padded_width(100, None, 64) == 128 and padded_width(100, 110, 64) == 110 and padded_width(128, 512, 64) == 128
    assert padded_width(100, None, 1) == 100
    rng = torch.Generator().manual_seed(0)
    examples = [Example(i, torch.randint(0, 300, (n,), generator=rng).numpy(), (torch.arange(n) > 3).numpy())
                for i, n in enumerate((30, 17, 41, 9))]
    exact = step_batches(examples, [[0, 1, 2, 3]], 2, 64, 0, True)
    rounded = step_batches(examples, [[0, 1, 2, 3]], 2, 64, 0, True, multiple=64)
    # 97 tokens in two rows of at most 64: spread evenly (pack_evenly) the fuller holds 50
    assert [b["input_ids"].shape[1] for b in exact] == [50] and [b["input_ids"].shape[1] for b in rounded] == [64]
    monkeypatch.setenv("TUNEDESK_SLOW_PATHS", "even")  # the benchmarks' path without the lever: first-fit
    assert [b["input_ids"].shape[1] for b in step_batches(examples, [[0, 1, 2, 3]], 2, 64, 0, True)] == [58]
    monkeypatch.setenv("TUNEDESK_SLOW_PATHS", "")
    model = _tiny_bf16_with_lora(monkeypatch, "").float()
    model.eval()
    with torch.no_grad():
        a = loss_sum(model, exact[0]["input_ids"], None, exact[0]["labels"], exact[0]["position_ids"])
        b = loss_sum(model, rounded[0]["input_ids"], None, rounded[0]["labels"], rounded[0]["position_ids"])
    assert torch.allclose(a, b, rtol=1e-5) and collate_packed([[examples[3]]], 0, 16, 64)["input_ids"].shape[1] == 16


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_replayed_checkpointing_gives_the_stock_checkpointing_s_loss_and_gradients(monkeypatch, dropout):
    stock = _tiny_bf16_with_lora(monkeypatch, "reentrant", dropout).float()
    replayed = _tiny_bf16_with_lora(monkeypatch, "", dropout).float()
    layers = [m for m in replayed.modules() if hasattr(m, "self_attn")]
    assert len(layers) == 2 and all(m._gradient_checkpointing_func is speed.replayed_checkpoint for m in layers)
    assert not any(getattr(m, "_gradient_checkpointing_func", None) is speed.replayed_checkpoint for m in stock.modules())
    first_pass_grad = []  # whether autograd was on in each layer's calls: off in the first pass, on in the replay
    for m in layers:
        m.self_attn.register_forward_hook(lambda m, i, o: first_pass_grad.append(torch.is_grad_enabled()))
    ids = torch.randint(0, 300, (2, 24), generator=torch.Generator().manual_seed(3))
    results = []
    for model in (stock, replayed):
        torch.manual_seed(7)  # the same dropout masks: both draw them in the same order
        results.append(_step(model, ids, autocast=False))
    (loss_stock, grads_stock), (loss_replayed, grads_replayed) = results
    assert first_pass_grad == [False, False, True, True]  # two layers' first pass, then the replays (last layer first)
    assert torch.allclose(loss_stock, loss_replayed, rtol=1e-6)
    assert grads_stock.keys() == grads_replayed.keys() and len(grads_replayed) == 2 * 2 * 7  # the first layer's too
    for n in grads_stock:
        assert torch.allclose(grads_stock[n], grads_replayed[n], rtol=1e-5, atol=1e-7), n


def test_replayed_checkpointing_keeps_gradients_that_reach_a_layer_through_keywords(monkeypatch):
    # Reentrant checkpointing passes gradients through positional tensors only: a keyword
    # tensor that needs one, or a layer with nothing to train, keeps the stock checkpointing.
    import functools

    layer = torch.nn.Linear(3, 3)
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)

    def forward(self, x, extra=None):
        return self(x) * (1 if extra is None else extra)

    x = torch.randn(2, 3)
    extra = torch.randn(2, 3, requires_grad=True)
    speed.replayed_checkpoint(functools.partial(forward, layer, extra=extra), x).sum().backward()
    assert extra.grad is not None and torch.allclose(extra.grad, layer(x).detach())
    # transformers 5.1x binds the layer's __call__, 5.2x its forward: both are recognised
    lora = torch.nn.Linear(3, 3)
    for function in (functools.partial(lora.__call__), functools.partial(forward, lora)):
        calls = []
        monkeypatch.setattr(speed, "checkpoint", lambda f, *a, **k: calls.append(k["use_reentrant"]) or f(*a))
        speed.replayed_checkpoint(function, x)
        assert calls == [True]
    monkeypatch.undo()
    frozen_in = torch.randn(2, 3, requires_grad=True)  # nothing in the layer trains: still the input's gradient
    speed.replayed_checkpoint(functools.partial(forward, layer), frozen_in).sum().backward()
    assert frozen_in.grad is not None
