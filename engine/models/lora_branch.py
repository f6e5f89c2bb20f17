"""Every LoRA-adapted linear layer as one autograd node (issue 16).

peft computes a LoRA layer as `base(x) + lora_B(lora_A(dropout(x))) * scaling`: three
`nn.Linear` calls, a multiply, an add and, under autocast, a cast of each fp32 adapter
matrix, each its own autograd node, and on 4-bit layers a defensive copy of the base
output. On a packed step of the 1.5B shape on an H200 the GPU waited for the host 82% of
the time (bench/results/profile/), and per adapted layer those nodes are most of the
host's work: ~200 layers, each run in the forward pass, the recompute and the backward.

`LoraBranch` computes the layer as one node: `x @ W.T + bias` and then
`scaling * (x @ A.T) @ B.T` added in place by one `addmm`, with its backward by hand (the
products autograd would run, the input's two gradients summed in one `addmm` when there is
no dropout). A quantized base layer (bitsandbytes 4-bit, 8-bit) still runs as its own
module, and the node adds the branch to its output. Results are the same up to the order
of floating-point additions (tests/test_speed.py). Measured (bench/README.md): +6% useful
tokens/s with a consumer card's share of an H200's SMs, no change on the whole H200 (its
step is bound by other host work). Memory:
it keeps fewer tensors for the backward pass than peft's path (-0.6 to -1.2 GiB on plans
without checkpointing); with LoRA dropout the backward pass holds the branch's input
gradient and the base's at once before dropout's backward runs (+0.1 GiB on checkpointed
plans).

It applies only where peft's path would do plain LoRA: training mode, one active adapter, not
merged, no DoRA or other variant, no per-call arguments. Anything else takes peft's
forward unchanged. TUNEDESK_SLOW_PATHS=lora turns it off (bench/throughput.py measures it).
"""

from __future__ import annotations

import types

import torch

from .speed import slow_path


class LoraBranch(torch.autograd.Function):
    """out = base + scaling * (x_drop @ A.T) @ B.T, every product in `dtype`.

    base is `base_out` where the base layer ran as its own module (quantized layers), or
    x @ W.T + bias computed here for a plain frozen linear layer (`base_out` None), which
    saves that layer's node and, in the backward pass, sums both paths' input gradients in
    one `addmm`. `x_drop` is the branch's input after LoRA dropout, None when it is `x`."""

    @staticmethod
    def forward(ctx, x, x_drop, lora_a, lora_b, scaling: float, dtype: torch.dtype, base_out, weight, bias):
        a, b = lora_a.to(dtype), lora_b.to(dtype)
        x2 = x.reshape(-1, x.shape[-1]).to(dtype)
        xd2 = x2 if x_drop is None else x_drop.reshape(-1, x_drop.shape[-1]).to(dtype)
        xa = xd2 @ a.t()
        if base_out is None:
            w = weight.to(dtype)
            out = x2 @ w.t() if bias is None else torch.addmm(bias.to(dtype), x2, w.t())
            out_dtype, out_shape = x.dtype, x.shape[:-1] + (w.shape[0],)
        else:
            out = base_out.reshape(-1, base_out.shape[-1]).to(dtype, copy=True)
            out_dtype, out_shape = base_out.dtype, base_out.shape
        out.addmm_(xa, b.t(), alpha=scaling)
        # The weight itself, not its cast: a bf16 copy of an fp32 layer would stay alive until
        # the backward pass; the backward casts it again.
        ctx.save_for_backward(x2 if x_drop is None else xd2, xa, a, b, weight)
        ctx.scaling, ctx.x_drop_given, ctx.base_given = scaling, x_drop is not None, base_out is not None
        ctx.x_meta = (x.shape, x.dtype, None if x_drop is None else (x_drop.shape, x_drop.dtype))
        ctx.param_dtypes = (lora_a.dtype, lora_b.dtype)
        return out.view(out_shape).to(out_dtype)

    @staticmethod
    def backward(ctx, d_out):
        xd2, xa, a, b, w = ctx.saved_tensors
        (x_shape, x_dtype, drop_meta), s = ctx.x_meta, ctx.scaling
        dy = d_out.reshape(-1, d_out.shape[-1]).to(a.dtype)
        dyb = (dy @ b).mul_(s)  # [tokens, r]: the gradient at x_drop @ A.T, scaled once
        d_x = d_drop = None
        if ctx.needs_input_grad[1]:  # the branch's input is the dropped x: its own gradient
            d_drop = (dyb @ a).view(drop_meta[0]).to(drop_meta[1])
        if ctx.needs_input_grad[0]:
            if w is not None:  # the base layer's gradient, and the branch's where it read x itself
                w = w.to(a.dtype)
                d_x = dy @ w
                if not ctx.x_drop_given:
                    d_x.addmm_(dyb, a)  # in place: a second [tokens, in] tensor would raise the peak
            elif not ctx.x_drop_given:
                d_x = dyb @ a
            d_x = None if d_x is None else d_x.view(x_shape).to(x_dtype)
        d_a = (dyb.t() @ xd2).to(ctx.param_dtypes[0]) if ctx.needs_input_grad[2] else None
        d_b = (dy.t() @ xa).mul_(s).to(ctx.param_dtypes[1]) if ctx.needs_input_grad[3] else None
        d_base = d_out if ctx.base_given and ctx.needs_input_grad[6] else None
        return d_x, d_drop, d_a, d_b, None, None, d_base, None, None


def _plain_lora(layer, args, kwargs) -> str | None:
    """The adapter this call would apply as plain LoRA in training, or None (peft's path)."""
    # Training mode, with or without autograd: a checkpointed layer's first pass runs under
    # no_grad (speed.replayed_checkpoint) and must compute what its replay computes.
    if args or kwargs or layer.disable_adapters or layer.merged or not layer.training:
        return None
    active = layer.active_adapters
    if len(active) != 1 or active[0] not in layer.lora_A or active[0] in getattr(layer, "lora_variant", {}):
        return None
    return active[0]


def _forward(self, x, *args, **kwargs):
    name = _plain_lora(self, args, kwargs)
    if name is None:
        return type(self).forward(self, x, *args, **kwargs)
    lora_a, lora_b = self.lora_A[name].weight, self.lora_B[name].weight
    dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else lora_a.dtype
    drop = self.lora_dropout[name]
    x_drop = None if isinstance(drop, torch.nn.Identity) else drop(x)
    base = self.base_layer
    if type(base) is torch.nn.Linear and not base.weight.requires_grad and (base.bias is None or not base.bias.requires_grad):
        return LoraBranch.apply(x, x_drop, lora_a, lora_b, self.scaling[name], dtype, None, base.weight, base.bias)
    # Quantized (or trainable) base weights: the base layer runs as its own module.
    return LoraBranch.apply(x, x_drop, lora_a, lora_b, self.scaling[name], dtype, base(x), None, None)


def fuse_lora_branches(model) -> int:
    """Every peft LoRA linear layer of `model` computes its branch as one `LoraBranch` node
    where it can (see the module's docstring). Returns how many layers were changed."""
    if slow_path("lora"):
        return 0
    from peft.tuners.lora import LoraLayer

    n = 0
    for module in model.modules():
        # Linear layers only (plain, and bitsandbytes' 4-bit and 8-bit, which subclass it):
        # embeddings and convolutions keep peft's path.
        if isinstance(module, LoraLayer) and isinstance(module.get_base_layer(), torch.nn.Linear) \
                and all(isinstance(m, torch.nn.Linear) for m in module.lora_A.values()):
            module.forward = types.MethodType(_forward, module)
            n += 1
    return n
