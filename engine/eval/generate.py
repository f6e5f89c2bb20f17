"""Short greedy answers to many prompts at once (left-padded batches), and whether each
ended on its own (end-of-sequence token) before the token limit. Used by the forgetting
meter, replay and the end-of-training EOS check: cheap enough for a CPU. stop_ids is the
one stop rule: chat and Compare (engine/chat) stop on the same tokens."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.render import generation_prompt


@dataclass
class Answer:
    text: str
    ended: bool
    """True if the model stopped on its own (EOS) before max_new_tokens."""
    tokens: int


def prompt_ids(tokenizer, prompt: str, system: str | None = None) -> list[int]:
    """The prompt written as training writes a row's (data.render), so the meter and replay
    ask the model what chat and Compare would."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return list(tokenizer(generation_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])


def last_answer_start(trained: np.ndarray) -> int:
    """Index of the first token of the last trained run (the last assistant turn)."""
    idx = np.flatnonzero(trained)
    if len(idx) == 0:
        return len(trained)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    return int(idx[breaks[-1] + 1]) if len(breaks) else int(idx[0])


def stop_ids(tokenizer) -> list[int]:
    """End-of-turn tokens: the EOS and, where the template has one, the turn's end marker."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for tok in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        i = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(i, int) and i != tokenizer.unk_token_id and i >= 0:
            ids.add(i)
    return sorted(ids)


@torch.no_grad()
def greedy(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, device, batch: int = 8) -> list[Answer]:
    """Greedy answers to token-id prompts, `batch` at a time; the model's mode is restored."""
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_ids(tokenizer)
    out: list[Answer] = []
    try:
        for k in range(0, len(prompts), batch):
            chunk = prompts[k : k + batch]
            width = max(len(p) for p in chunk)
            ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in chunk], device=device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=device)
            gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 temperature=None, top_p=None, top_k=None, pad_token_id=pad, eos_token_id=stops,
                                 use_cache=True)
            for row in gen[:, width:].tolist():
                end = next((i for i, t in enumerate(row) if t in stops), None)
                body = row if end is None else row[:end]
                out.append(Answer(tokenizer.decode(body, skip_special_tokens=True).strip(), end is not None, len(body)))
    finally:
        model.train(was_training)
    return out
