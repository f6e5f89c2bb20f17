"""Architecture presets: the published config.json of models hobbyists pick.

Used to reason about a model without its weights (planner) and to build random-weight
models of the exact shape on the GPU machine (benchmarks), where nothing can be
downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import paths
from ..errors import ModelError


def presets_dir() -> Path:
    return paths.resources_dir() / "presets"


def names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.json"))


def load(name: str) -> dict:
    path = presets_dir() / f"{name}.json"
    if not path.is_file():
        raise ModelError(f"no preset '{name}'; known: {', '.join(names())}")
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def build_random_model(name: str, out: Path, *, tokenizer_folder: Path, dtype: str = "bfloat16", device: str = "cpu") -> Path:
    """A folder with the preset's architecture, random weights and the given tokenizer.

    Throughput and memory do not depend on weight values, so this stands in for the
    real model in benchmarks. Token ids of the (smaller) tokenizer fit any preset vocab.
    """
    return build_random_from_config(load(name), out, tokenizer_folder=tokenizer_folder, dtype=dtype, device=device)


def build_random_from_config(values: dict, out: Path, *, tokenizer_folder: Path, dtype: str = "bfloat16",
                             device: str = "cpu") -> Path:
    """build_random_model for a config.json's values rather than a preset's name."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    values = {k: v for k, v in values.items() if not k.startswith("_")}
    cfg = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_folder).save_pretrained(out)
    return out
