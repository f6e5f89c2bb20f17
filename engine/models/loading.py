"""Load the tokenizer and the base model for training or chat, and attach LoRA.

Precision: CPU trains in fp32 (bf16 matmuls are slow on most CPUs); CUDA loads the
base weights in bf16, or fp16 on cards without bf16 (Turing and older), optionally
quantized by bitsandbytes. LoRA weights stay fp32 (peft's default) for stable updates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import LoraConfig, ModelConfig
from ..errors import ModelError


@dataclass
class Placement:
    device: str  # "cpu" | "cuda"
    dtype: "object"  # torch.dtype
    quantization: str  # what is actually used, after any fallback

    @property
    def autocast(self) -> bool:
        return self.device == "cuda"


def choose_placement(model_cfg: ModelConfig, device_pref: str, warn: Callable[[str], None]) -> Placement:
    import torch

    cuda = torch.cuda.is_available()
    if device_pref == "cuda" and not cuda:
        raise ModelError("a CUDA GPU was asked for, but torch sees none (CPU-only torch build, or no driver)")
    device = "cuda" if cuda and device_pref != "cpu" else "cpu"
    quant = model_cfg.quantization
    if device == "cpu":
        if quant != "none":
            warn(f"{quant} quantization needs a CUDA GPU; training unquantized on the CPU")
            quant = "none"
        return Placement("cpu", torch.float32, quant)
    from ..hardware import apply_simulated_cap

    apply_simulated_cap()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Placement("cuda", dtype, quant)


def load_tokenizer(folder: Path, model_cfg: ModelConfig):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=model_cfg.trust_remote_code)
    except Exception as e:
        raise ModelError(f"{folder}: cannot load the tokenizer ({type(e).__name__}: {e})") from e
    if tok.pad_token is None:
        # Padding positions are masked out of attention and loss, so any id works.
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def load_model(folder: Path, model_cfg: ModelConfig, placement: Placement, *, embedding_module: str = "",
               sharded: bool = False):
    """The base model as planned. `sharded` (FSDP2, engine/training/sharding.py; always
    unquantized, engine/fit/sharding.py says why): the weights load into RAM and sharding
    moves each card's share to it layer by layer, so the whole model never sits on one card."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = dict(
        dtype=placement.dtype,
        trust_remote_code=model_cfg.trust_remote_code,
        use_safetensors=None if model_cfg.allow_pickle else True,
        attn_implementation="sdpa",
    )
    if placement.quantization != "none":
        from transformers import BitsAndBytesConfig

        if placement.quantization == "4bit":
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=placement.dtype,
            )
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        # Modules placed in RAM are left unquantized (they are only looked up).
        kwargs["quantization_config"].llm_int8_enable_fp32_cpu_offload = bool(model_cfg.embeddings_on_cpu)
    if placement.device == "cuda" and sharded and placement.quantization == "none":
        pass  # into RAM: fully_shard moves each layer's share to the card
    elif placement.device == "cuda":
        kwargs["device_map"] = {"": torch.cuda.current_device()}
        if model_cfg.embeddings_on_cpu and embedding_module:
            kwargs["device_map"] = {embedding_module: "cpu", "": torch.cuda.current_device()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except ImportError as e:
        raise ModelError(f"a library needed for {placement.quantization} loading is missing: {e}") from e
    except Exception as e:
        raise ModelError(f"{folder}: cannot load the model ({type(e).__name__}: {e})") from e
    model.config.use_cache = False  # the KV cache is useless (and costly) while training
    if placement.quantization != "none":
        keep_norms_in(model, placement.dtype)
    if placement.device == "cuda":
        if model_cfg.embeddings_on_cpu and embedding_module:
            look_up_in_ram(model, embedding_module, torch.device("cuda", torch.cuda.current_device()))
        # Loading (quantizing on the fly) leaves its scratch blocks in torch's cache; the
        # training step's differently sized tensors cannot reuse them, so hand them back.
        torch.cuda.empty_cache()
    return model


def keep_norms_in(model, dtype) -> int:
    """Make normalization layers hand the compute dtype to what follows them.

    Autocast runs layer_norm in fp32, and bitsandbytes' quantized linears return their
    input's dtype, so in a LayerNorm model (StableLM, GPT-NeoX, Phi-2) loaded in 4 or 8
    bits the fp32 flows on through q/k/v, the MLP and the residual stream: every layer's
    checkpointed input and the recomputed block were twice their bf16 size
    (StableLM-2-1.6B at 2 x 4,096 tokens: 3.42 GiB of step memory against 2.56 unquantized,
    bench/results/fit_check). An unquantized linear casts to bf16 under autocast itself;
    this does the same for the quantized ones. Returns how many layers it hooked."""
    import torch

    def cast(_module, _args, out):
        return out.to(dtype) if isinstance(out, torch.Tensor) and out.dtype == torch.float32 else out

    hooked = 0
    for module in model.modules():
        if type(module).__name__.endswith("Norm"):  # LayerNorm, RMSNorm...: RMSNorms already return bf16
            module.register_forward_hook(cast)
            hooked += 1
    return hooked


def look_up_in_ram(model, name: str, device) -> None:
    """Make the embedding table (module `name`) that the device map put in RAM stay there for good.

    accelerate keeps a module mapped to "cpu" on the meta device and copies its weight to
    the GPU for every forward: the whole table (1.0-1.5 GiB on a 128k-152k vocabulary) as
    one transient block, which fragmented the cache and ran a 14B out of memory on a
    10.5 GiB card with 0.85 GiB still free. Here the lookup runs on the CPU and only the
    looked-up rows (tokens x hidden) go to the GPU. The table is frozen, so nothing flows
    back through the copy.

    The device map then no longer names the table: "cpu" in it makes peft's
    PeftModel.from_pretrained (the chat's tuned model) strip every hook and dispatch the
    model again, which put the table back on the GPU behind these CPU lookups."""
    import torch
    from accelerate.hooks import remove_hook_from_module

    embedding = model.get_submodule(name)
    hook = getattr(embedding, "_hf_hook", None)
    hooks = getattr(hook, "hooks", [hook])  # a SequentialHook when the device map added several
    tables = [h.weights_map for h in hooks if getattr(h, "weights_map", None) is not None]
    if tables:  # offloaded: the real table is the hook's
        weight = tables[0]["weight"].to("cpu")
        remove_hook_from_module(embedding)
        embedding.weight = torch.nn.Parameter(weight, requires_grad=False)
    embedding.register_forward_pre_hook(lambda _m, args: (args[0].to("cpu"), *args[1:]))
    embedding.register_forward_hook(lambda _m, _args, out: out.to(device, non_blocking=True))
    device_map = getattr(model, "hf_device_map", None)
    if device_map:
        model.hf_device_map = {k: v for k, v in device_map.items() if k != name and not k.startswith(name + ".")}


def enable_checkpointing(model) -> None:
    """Gradient checkpointing, on a model with or without LoRA; it only acts in train mode
    (the trainer calls model.train()). Each decoder layer runs its first pass without
    autograd (speed.replayed_checkpoint, reentrant with an anchor input, so frozen
    embeddings need no input-grad hook); TUNEDESK_SLOW_PATHS=reentrant keeps
    transformers' non-reentrant checkpointing. Lean memory (lean.py) puts its own in place."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    from .speed import replayed_checkpoint, slow_path

    if not slow_path("reentrant"):  # the first forward pass without autograd (speed.replayed_checkpoint)
        for module in model.modules():
            if hasattr(module, "_gradient_checkpointing_func"):
                module._gradient_checkpointing_func = replayed_checkpoint


def add_lora(model, lora: LoraConfig, *, gradient_checkpointing: bool, lean: bool = False):
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    if gradient_checkpointing:
        enable_checkpointing(model)
    # No prepare_model_for_kbit_training: it makes fp32 copies of embeddings / lm_head
    # (about 2 GiB on a 152k vocabulary) that an 8 GB card cannot afford.
    peft_cfg = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )
    model = get_peft_model(model, peft_cfg)
    from .lora_branch import fuse_lora_branches
    from .packed_attention import use_packed_attention
    from .speed import choose_attention_kernels, compile_layers, keep_lora_input_dtype, use_fused_kernels

    choose_attention_kernels()
    use_packed_attention(model)
    keep_lora_input_dtype(model)  # for the calls that still take peft's path (generation, DoRA, ...)
    fuse_lora_branches(model)
    use_fused_kernels(model)  # before lean memory, whose MLP tiles wrap whatever forward the MLP has
    compile_layers(model)
    if lean and gradient_checkpointing:
        from .lean import make_lean

        make_lean(model)
    return model
