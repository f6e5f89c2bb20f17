"""The base model with the adapter merged in, as a plain safetensors folder with its
tokenizer and chat template: any transformers-based tool loads it, and the GGUF targets
start from it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import models
from ..config import ModelConfig
from ..errors import TuneDeskError
from ..runs import RunDir
from .target import Options, Target

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def merge(run: RunDir, folder: Path, dtype: str, status: Callable[[str], None], adapter: str = "best") -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ..models.loading import load_tokenizer

    if dtype not in DTYPES:
        raise TuneDeskError(f"unknown dtype '{dtype}' (one of {', '.join(DTYPES)})")
    cfg, extra = run.read_config()
    base_folder = Path(extra.get("resolved_model_folder", ""))
    if not (base_folder / "config.json").is_file():
        base_folder = models.resolve(cfg.model.source, allow_pickle=cfg.model.allow_pickle, revision=cfg.model.revision,
                                     status=status)
    # A 4-bit or 8-bit run is merged into the full-precision base: the adapter was trained
    # against the dequantized weights, and a merged quantized model would lose precision.
    status(f"Loading {models.display_name(cfg.model.source)} in {dtype} on the CPU…")
    base = AutoModelForCausalLM.from_pretrained(
        base_folder, dtype=getattr(torch, DTYPES[dtype]), use_safetensors=None if cfg.model.allow_pickle else True,
        trust_remote_code=cfg.model.trust_remote_code,
    )
    status("Merging the adapter…")
    merged = PeftModel.from_pretrained(base, run.adapter_for(adapter)).merge_and_unload()
    merged.save_pretrained(folder, safe_serialization=True)
    tok = load_tokenizer(base_folder, ModelConfig(trust_remote_code=cfg.model.trust_remote_code))
    tok.save_pretrained(folder)


def write(run: RunDir, folder: Path, opts: Options) -> None:
    merge(run, folder, opts.dtype, opts.status, opts.adapter)


TARGET = Target("merged", "Merged model (safetensors)",
                "the base model with the adapter merged in, as one safetensors folder with its tokenizer (--dtype)", write)
