"""A model's architecture and exact parameter counts, from config.json alone.

The model is instantiated on the meta device (no memory, no weights), so the counts are
exact for any architecture transformers knows, and cost well under a second.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class ModelInfo:
    architecture: str
    model_type: str
    params_total: int
    params_linear: int
    """Linear layers inside the blocks: what bitsandbytes quantizes and LoRA adapts."""
    params_embedding: int
    params_lm_head: int
    """0 when tied to the embeddings."""
    params_norm: int
    params_other: int
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    context_length: int
    tied_embeddings: bool
    linear_shapes: dict[str, tuple[int, int]]
    """Per linear module name in one block (q_proj, …): (in_features, out_features)."""
    embedding_module: str = ""
    """Dotted name of the input embedding module (e.g. model.embed_tokens)."""
    gated_mlp: bool = True
    """SwiGLU-style MLP (gate and up projections, or one fused gate_up): twice the
    intermediate-size tensors of a plain GELU MLP (GPT-NeoX, Phi-2)."""
    sliding_window: int = 0
    """Tokens of sliding-window attention (Gemma 2/3, Mistral v0.1); 0: none. Longer
    sequences need a materialized attention mask."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lora_params(self, r: int, targets: list[str] | str = "all-linear") -> int:
        names = self.linear_shapes if targets == "all-linear" else {k: v for k, v in self.linear_shapes.items() if k in targets}
        return self.layers * sum(r * (i + o) for i, o in names.values())


def from_config_dict(values: dict[str, Any]) -> ModelInfo:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = {k: v for k, v in values.items() if not k.startswith("_")}
    cfg = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    counts = {"linear": 0, "embedding": 0, "lm_head": 0, "norm": 0, "other": 0}
    embedding_module = ""
    shapes: dict[str, tuple[int, int]] = {}
    seen: set[int] = set()
    out_emb = model.get_output_embeddings()
    in_emb = model.get_input_embeddings()
    for name, module in model.named_modules():
        direct = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        if not direct:
            continue
        n = sum(p.numel() for p in direct)
        seen.update(id(p) for p in direct)
        if module is in_emb:
            counts["embedding"] += n
            embedding_module = name
        elif module is out_emb:
            counts["lm_head"] += n
        elif isinstance(module, torch.nn.Linear):
            counts["linear"] += n
            shapes.setdefault(name.rsplit(".", 1)[-1], (module.in_features, module.out_features))
        elif "norm" in type(module).__name__.lower():
            counts["norm"] += n
        else:
            counts["other"] += n
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    heads = text.num_attention_heads
    intermediate = getattr(text, "intermediate_size", None) or 4 * text.hidden_size
    # Linears that widen to the intermediate size: two (gate, up), or one of twice its
    # width (a fused gate_up), make a gated MLP; one of its width, a plain one.
    widening = [o for i, o in shapes.values() if i == text.hidden_size and o in (intermediate, 2 * intermediate)]
    gated = len(widening) >= 2 or 2 * intermediate in widening
    window = getattr(text, "sliding_window", None) or 0
    context = getattr(text, "max_position_embeddings", 0)
    if getattr(text, "use_sliding_window", True) is False or (context and window >= context):
        window = 0
    return ModelInfo(
        architecture=(cfg.architectures or [type(model).__name__])[0],
        model_type=cfg.model_type,
        params_total=sum(counts.values()),
        params_linear=counts["linear"],
        params_embedding=counts["embedding"],
        params_lm_head=counts["lm_head"],
        params_norm=counts["norm"],
        params_other=counts["other"],
        vocab_size=text.vocab_size,
        hidden_size=text.hidden_size,
        intermediate_size=intermediate,
        layers=text.num_hidden_layers,
        heads=heads,
        kv_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads,
        context_length=getattr(text, "max_position_embeddings", 0),
        tied_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
        linear_shapes=shapes,
        embedding_module=embedding_module,
        gated_mlp=gated,
        sliding_window=int(window),
    )


def from_folder(folder: str | Path) -> ModelInfo:
    return from_config_dict(json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")))


def from_preset(name: str) -> ModelInfo:
    from . import presets

    return from_config_dict(presets.load(name))
