"""Export a run: the PEFT adapter (with a README); the base model with the adapter merged
in, as a plain safetensors folder that any transformers-based tool loads; that model as
GGUF (llama.cpp, LM Studio); or GGUF + Modelfile for Ollama."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from .. import models
from ..atomic import atomic_dir, write_text
from ..config import ModelConfig
from ..errors import TuneDeskError
from ..runs import RunDir

FORMATS = ("adapter", "merged", "gguf", "ollama")
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def _adapter_readme(run: RunDir) -> str:
    cfg, _ = run.read_config()
    summary, plan = run.summary() or {}, run.plan()
    return (
        f"# LoRA adapter trained with TuneDesk\n\n"
        f"- Base model: `{cfg.model.source}` ({models.display_name(cfg.model.source)})\n"
        f"- Dataset: `{Path(cfg.data.path).name}`\n"
        f"- LoRA: rank {plan.get('lora_r', cfg.lora.r)}, alpha {plan.get('lora_alpha', cfg.lora.alpha)}, "
        f"dropout {plan.get('lora_dropout', cfg.lora.dropout)}, targets {cfg.lora.target_modules}\n"
        f"- Training: {summary.get('steps', '?')} steps, learning rate {cfg.train.lr}, "
        f"quantization {plan.get('quantization', 'none')}, sequence length {plan.get('seq_len', '?')}\n"
        f"- Validation loss: {summary.get('eval_loss_start')} → {summary.get('eval_loss')}\n\n"
        "Load it with PEFT:\n\n"
        "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM\n"
        "base = AutoModelForCausalLM.from_pretrained(BASE_MODEL)\nmodel = PeftModel.from_pretrained(base, THIS_FOLDER)\n```\n"
    )


def export(run_dir: str | Path, fmt: str, out: str | Path, *, dtype: str = "bf16", quant: str = "q8_0",
           status: Callable[[str], None] = lambda _: None) -> Path:
    run = RunDir.open(run_dir)
    if fmt not in FORMATS:
        raise TuneDeskError(f"unknown export format '{fmt}' (one of {', '.join(FORMATS)})")
    if not run.has_adapter():
        raise TuneDeskError(f"{run.path}: this run has no saved adapter to export")
    target = Path(out).expanduser()
    if target.exists() and any(target.iterdir()):
        raise TuneDeskError(f"{target}: the folder exists and is not empty; choose a new one")
    with atomic_dir(target) as tmp:
        if fmt == "adapter":
            for f in run.adapter_dir.iterdir():
                shutil.copy2(f, tmp / f.name)
            write_text(tmp / "README.md", _adapter_readme(run))
        elif fmt == "merged":
            _merge(run, tmp, dtype, status)
        else:
            _gguf(run, tmp, fmt, quant, status)
    return target


def _gguf(run: RunDir, tmp: Path, fmt: str, quant: str, status: Callable[[str], None]) -> None:
    """Merge in fp32 (exact), then write GGUF; for Ollama also a Modelfile and its command."""
    from transformers import AutoTokenizer

    from .gguf import write_gguf
    from .ollama import modelfile

    merged = tmp / ".merged"
    _merge(run, merged, "fp32", status)
    cfg, _ = run.read_config()
    name = re.sub(r"[^a-z0-9._-]+", "-", run.path.name.lower()).strip("-") or "tunedesk-model"
    quants = ["f16", "q8_0"] if quant == "all" else [quant]
    for q in quants:
        write_gguf(merged, tmp / f"{name}-{q}.gguf", q, name=name, status=status)
    if fmt == "ollama":
        tok = AutoTokenizer.from_pretrained(merged)
        write_text(tmp / "Modelfile", modelfile(f"{name}-{quants[-1]}.gguf", tok, system=cfg.data.system_prompt))
        write_text(tmp / "README.md", f"# {name} for Ollama\n\nRegister it once, then chat:\n\n"
                                      f"    ollama create {name} -f Modelfile\n    ollama run {name}\n")
    shutil.rmtree(merged)


def _merge(run: RunDir, tmp: Path, dtype: str, status: Callable[[str], None]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ..models.loading import load_tokenizer

    if dtype not in DTYPES:
        raise TuneDeskError(f"unknown dtype '{dtype}' (one of {', '.join(DTYPES)})")
    cfg, extra = run.read_config()
    folder = Path(extra.get("resolved_model_folder", ""))
    if not (folder / "config.json").is_file():
        folder = models.resolve(cfg.model.source, allow_pickle=cfg.model.allow_pickle, revision=cfg.model.revision, status=status)
    # A 4-bit or 8-bit run is merged into the full-precision base: the adapter was trained
    # against the dequantized weights, and a merged quantized model would lose precision.
    status(f"Loading {models.display_name(cfg.model.source)} in {dtype} on the CPU…")
    base = AutoModelForCausalLM.from_pretrained(
        folder, dtype=getattr(torch, DTYPES[dtype]), use_safetensors=None if cfg.model.allow_pickle else True,
        trust_remote_code=cfg.model.trust_remote_code,
    )
    status("Merging the adapter…")
    merged = PeftModel.from_pretrained(base, run.adapter_dir).merge_and_unload()
    merged.save_pretrained(tmp, safe_serialization=True)
    tok = load_tokenizer(folder, ModelConfig(trust_remote_code=cfg.model.trust_remote_code))
    tok.save_pretrained(tmp)
