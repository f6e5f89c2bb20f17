"""The PEFT adapter as trained, with a README saying what it was trained from and how."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import models
from ..atomic import write_text
from ..runs import RunDir
from .target import Options, Target


def readme(run: RunDir) -> str:
    cfg, _ = run.read_config()
    summary, plan = run.summary() or {}, run.plan()
    return (
        f"# LoRA adapter trained with TuneDesk\n\n"
        f"- Base model: `{cfg.model.source}` ({models.display_name(cfg.model.source)})\n"
        f"- Dataset: `{Path(cfg.data.path).name}`\n"
        f"- LoRA: rank {plan.get('lora_r', cfg.lora.r)}, alpha {plan.get('lora_alpha', cfg.lora.alpha)}, "
        f"dropout {plan.get('lora_dropout', cfg.lora.dropout)}, targets {cfg.lora.target_modules}\n"
        f"- Training: {summary.get('steps', '?')} steps, learning rate {plan.get('lr', cfg.train.lr)}, "
        f"quantization {plan.get('quantization', 'none')}, sequence length {plan.get('seq_len', '?')}\n"
        f"- Validation loss: {summary.get('eval_loss_start')} → {summary.get('eval_loss')}\n\n"
        "Load it with PEFT:\n\n"
        "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM\n"
        "base = AutoModelForCausalLM.from_pretrained(BASE_MODEL)\nmodel = PeftModel.from_pretrained(base, THIS_FOLDER)\n```\n"
    )


def write(run: RunDir, folder: Path, opts: Options) -> None:
    for f in run.adapter_for(opts.adapter).iterdir():
        shutil.copy2(f, folder / f.name)
    write_text(folder / "README.md", readme(run))


TARGET = Target("adapter", "LoRA adapter (PEFT)",
                "the PEFT adapter folder with a README (base model, dataset, settings, losses)", write)
