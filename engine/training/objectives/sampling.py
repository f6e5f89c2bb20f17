"""GRPO's rollouts: G sampled answers per prompt from the adapter-on model, and the
right-padded sequences (prompt + answer) the training pass scores them on.

Generation runs in eval mode (gradient checkpointing turns the KV cache off in train
mode) on left-padded prompts, the batch's prompts each repeated G times; an answer ends
at the template's end-of-turn token (eval.generate.stop_ids), which is kept: it is the
token that teaches the model to stop. The training pass then uses the same tokens
right-padded, so causal attention needs no mask and positions start at 0 for every row,
as in generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...data.render import IGNORE


@dataclass
class Completion:
    prompt: int
    """Index of its prompt in the batch."""
    ids: list[int]
    """The sampled tokens, through the stop token when the answer ended."""
    text: str
    """The answer's text without the stop token (what the rewards read)."""
    ended: bool

    @property
    def tokens(self) -> int:
        return len(self.ids) - int(self.ended)


@torch.no_grad()
def sample(model, tokenizer, prompts: list[list[int]], group: int, max_new: int, stops: list[int], device,
           *, greedy: bool = False, min_new: int = 0, temperature: float = 1.0) -> list[Completion]:
    """`group` answers to each prompt (prompt-major: prompt 0's answers first); the model's
    mode is restored. min_new forces full-length answers (the calibration probe)."""
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    settings = ({"do_sample": False, "temperature": None, "top_p": None, "top_k": None} if greedy else
                {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0})  # the whole distribution
    try:
        gen = model.generate(input_ids=ids.repeat_interleave(group, 0), attention_mask=mask.repeat_interleave(group, 0),
                             max_new_tokens=max_new, min_new_tokens=min_new or None, pad_token_id=pad,
                             eos_token_id=stops, use_cache=True, **settings)
    finally:
        model.train(was_training)
    out = []
    for k, row in enumerate(gen[:, width:].tolist()):
        end = next((i for i, t in enumerate(row) if t in stops), None)
        body = row if end is None else row[: end + 1]
        text = tokenizer.decode(body if end is None else body[:-1], skip_special_tokens=True).strip()
        out.append(Completion(k // group, body, text, end is not None))
    return out


def sequences(prompts: list[list[int]], completions: list[Completion], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, labels) of prompt + answer per completion, right-padded; only the answer's
    tokens are labelled, so token_logps scores exactly them, in order."""
    rows = [list(prompts[c.prompt]) + c.ids for c in completions]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (r, c) in enumerate(zip(rows, completions)):
        ids[i, : len(r)] = torch.tensor(r)
        start = len(r) - len(c.ids)
        labels[i, start : len(r)] = torch.tensor(c.ids, dtype=torch.long)
    return ids, labels
