"""Answer a prompt with a run's tuned model, or with its base model.

The base and tuned answers come from the same weights: the adapter is switched off
for the base answer (peft's `disable_adapter`), so comparing needs one model in memory.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import models
from ..data.render import ensure_chat_template, generation_prompt
from ..errors import TuneDeskError
from ..eval.generate import stop_ids
from ..models.loading import choose_placement, load_model, load_tokenizer
from ..runs import RunDir


@dataclass
class GenerationSettings:
    max_new_tokens: int = 200
    greedy: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    seed: int = 0


class ChatSession:
    def __init__(self, run_dir: str | Path, *, device: str = "auto", status=lambda _: None, warn=lambda _: None,
                 adapter: str = "best") -> None:
        from peft import PeftModel

        self.run = RunDir.open(run_dir)
        cfg, extra = self.run.read_config()
        _, model_cfg = self.run.loaded_as()
        if not self.run.has_adapter():
            raise TuneDeskError(f"{self.run.path}: this run has no saved adapter yet")
        folder = Path(extra.get("resolved_model_folder", ""))
        if not (folder / "config.json").is_file():
            folder = models.resolve(cfg.model.source, allow_pickle=cfg.model.allow_pickle, revision=cfg.model.revision, status=status)
        placement = choose_placement(model_cfg, device, warn)
        self.tokenizer = load_tokenizer(folder, cfg.model)
        ensure_chat_template(self.tokenizer)
        self.system_prompt = cfg.data.system_prompt
        from ..models.model_info import from_folder

        base = load_model(folder, model_cfg, placement, embedding_module=from_folder(folder).embedding_module)
        base.config.use_cache = True
        # The run's adapter is its best evaluation's; "last": the last step's (engine/runs.py)
        self.model = PeftModel.from_pretrained(base, self.run.adapter_for(adapter))
        self.model.eval()

    @classmethod
    def attach(cls, run_dir: str | Path, model, tokenizer, *, system_prompt: str | None = None) -> "ChatSession":
        """A session over a model already in memory (the one a training just finished
        with): compare right after training without loading anything again."""
        self = cls.__new__(cls)
        self.run = RunDir.open(run_dir)
        self.tokenizer = tokenizer
        ensure_chat_template(self.tokenizer)
        self.system_prompt = system_prompt
        self.model = model
        self.model.eval()
        self.model.get_base_model().config.use_cache = True  # training turned the KV cache off
        self.from_memory = True
        return self

    from_memory = False

    def dataset_tools(self) -> list[dict]:
        """The function schemas the run's dataset offered ([] if none)."""
        from ..data.tool_sets import tools_in_dataset

        return tools_in_dataset(self.run.read_config()[0].data)

    def adapter(self, base: bool):
        """Context in which the model answers as the base (adapter off) or the tuned model."""
        return self.model.disable_adapter() if base else contextlib.nullcontext()

    def prompt_ids(self, conversation: str | list[dict], tools: list[dict] | None = None) -> torch.Tensor:
        """A prompt or a whole conversation (list of {role, content}), ready to answer; with
        `tools` (function schemas) written as training wrote a row's (data.render)."""
        messages = [{"role": "user", "content": conversation}] if isinstance(conversation, str) else list(conversation)
        if self.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        text = generation_prompt(self.tokenizer, messages, tools)
        return self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]

    def answer(self, conversation: str | list[dict], *, base: bool = False, settings: GenerationSettings | None = None,
               on_piece: Callable[[str], None] = lambda _: None, stop: Callable[[], bool] = lambda: False,
               input_ids: torch.Tensor | None = None, tools: list[dict] | None = None) -> str:
        """The answer, generated in the caller's thread (the caller picks the thread: the
        window's background job, or the CLI's main thread). Each piece of text goes to
        `on_piece` as soon as it is decoded; `stop()` True ends the answer early. `tools`:
        the function schemas the model may call (engine.data.tool_sets)."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

        pieces: list[str] = []

        class _Pieces(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    pieces.append(text)
                    on_piece(text)

        class _Stop(StoppingCriteria):
            def __call__(self, *_args, **_kw) -> bool:
                return stop()

        s = settings or GenerationSettings()
        ids = (input_ids if input_ids is not None else self.prompt_ids(conversation, tools)).to(self.device)
        kwargs = dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=s.max_new_tokens,
            repetition_penalty=s.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            # One stop rule with the meter, replay and the EOS check: the EOS or the template's
            # end-of-turn marker, where they differ (a base model's EOS is not its chat turn's end).
            eos_token_id=stop_ids(self.tokenizer),
            streamer=_Pieces(self.tokenizer, skip_prompt=True, skip_special_tokens=True),
            stopping_criteria=StoppingCriteriaList([_Stop()]),
        )
        if s.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        torch.manual_seed(s.seed)
        with torch.no_grad(), self.adapter(base):
            self.model.generate(**kwargs)
        return "".join(pieces).strip()

    @property
    def device(self) -> torch.device:
        # Where the model computes: the output head's device. Not the first parameter's,
        # which is the embedding table, in RAM when the plan keeps it there.
        return self.model.get_output_embeddings().weight.device


def tools_for(run_dir: str | Path, spec: str | None) -> list[dict] | None:
    """The schemas `spec` names (the CLI's --tools): None or "" none, "data" those of the
    run's dataset, else a JSON file of them. Read before the model loads: a bad file fails at once."""
    from ..data.tool_sets import load_tools_file, tools_in_dataset

    if not spec:
        return None
    if spec == "data":
        run = RunDir.open(run_dir)
        tools = tools_in_dataset(run.read_config()[0].data)
        if not tools:
            raise TuneDeskError(f"{run.path.name}: the run's dataset offers no tool schemas; give a JSON file of them")
        return tools
    return load_tools_file(spec)


def split_thinking(text: str) -> tuple[str, str]:
    """(chain of thought, answer) of a reasoning model's output; no <think>: ("", text)."""
    if "</think>" not in text:
        return ("", text) if "<think>" not in text else (text.split("<think>", 1)[1].strip(), "")
    thought, answer = text.split("</think>", 1)
    return thought.replace("<think>", "").strip(), answer.strip()
