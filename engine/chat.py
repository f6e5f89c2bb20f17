"""Answer a prompt with a run's tuned model, or with its base model.

The base and tuned answers come from the same weights: the adapter is switched off
for the base answer (peft's `disable_adapter`), so comparing needs one model in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import models
from .errors import TuneDeskError
from .loading import choose_placement, load_model, load_tokenizer
from .data.render import ensure_chat_template
from .runs import RunDir


@dataclass
class GenerationSettings:
    max_new_tokens: int = 200
    greedy: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    seed: int = 0


class ChatSession:
    def __init__(self, run_dir: str | Path, *, device: str = "auto", status=lambda _: None, warn=lambda _: None) -> None:
        from peft import PeftModel

        self.run = RunDir.open(run_dir)
        cfg, extra = self.run.read_config()
        if not (self.run.adapter_dir / "adapter_config.json").is_file():
            raise TuneDeskError(f"{self.run.path}: this run has no saved adapter yet")
        folder = Path(extra.get("resolved_model_folder", ""))
        if not (folder / "config.json").is_file():
            folder = models.resolve(cfg.model.source, allow_pickle=cfg.model.allow_pickle, revision=cfg.model.revision, status=status)
        placement = choose_placement(cfg.model, device, warn)
        self.tokenizer = load_tokenizer(folder, cfg.model)
        ensure_chat_template(self.tokenizer)
        self.system_prompt = cfg.data.system_prompt
        from .model_info import from_folder

        base = load_model(folder, cfg.model, placement, embedding_module=from_folder(folder).embedding_module)
        base.config.use_cache = True
        self.model = PeftModel.from_pretrained(base, self.run.adapter_dir)
        self.model.eval()

    def answer(self, prompt: str, *, base: bool = False, settings: GenerationSettings | None = None) -> str:
        s = settings or GenerationSettings()
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        device = next(self.model.parameters()).device
        enc = {k: v.to(device) for k, v in enc.items()}
        torch.manual_seed(s.seed)
        kwargs = dict(
            max_new_tokens=s.max_new_tokens,
            repetition_penalty=s.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        if s.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        with torch.no_grad():
            if base:
                with self.model.disable_adapter():
                    out = self.model.generate(**enc, **kwargs)
            else:
                out = self.model.generate(**enc, **kwargs)
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
