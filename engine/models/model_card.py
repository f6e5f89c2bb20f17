"""What a user wants to know about a model before training it (the GUI's model card)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import models
from ..config import ModelConfig
from . import model_info


@dataclass
class LoadedModel:
    """A resolved model: its folder, shape and tokenizer (weights stay on disk)."""

    source: str
    folder: Path
    info: model_info.ModelInfo
    tokenizer: Any
    card: dict[str, Any]


def _millions(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def load(cfg: ModelConfig, *, status: Callable[[str], None] = lambda _: None,
         progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None) -> LoadedModel:
    from ..data.render import is_reasoning_template
    from .loading import load_tokenizer

    folder = models.resolve(cfg.source, allow_pickle=cfg.allow_pickle, revision=cfg.revision, status=status,
                            progress=progress, cancelled=cancelled)
    info = model_info.from_folder(folder)
    tok = load_tokenizer(folder, cfg)
    card = {
        "name": models.display_name(cfg.source),
        "folder": str(folder),
        "architecture": info.architecture,
        "parameters": _millions(info.params_total),
        "layers": info.layers,
        "hidden_size": info.hidden_size,
        "heads": f"{info.heads} ({info.kv_heads} key/value)",
        "vocabulary": f"{info.vocab_size:,}",
        "context_length": f"{info.context_length:,} tokens",
        "tied_embeddings": info.tied_embeddings,
        "chat_template": bool(getattr(tok, "chat_template", None)),
        "reasoning_model": is_reasoning_template(tok),
    }
    return LoadedModel(cfg.source, folder, info, tok, card)
