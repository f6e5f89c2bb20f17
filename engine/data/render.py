"""Render a conversation through the model's chat template and mark the trained tokens.

The template decides the text; we only need to know which characters belong to the
assistant's answers. For assistant message i, the answer starts where the template's
rendering of messages[:i] with the generation prompt ends, and ends where the rendering
of messages[:i+1] ends (prefix differences). The answer's end-of-turn token is trained
too, so the model learns to stop; if the template emits none, the tokenizer's EOS is
appended. Token ids come from one tokenization of the whole text with offsets, so the
ids are exactly what the model sees at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = -100

# Used when a tokenizer ships no chat template (base models): plain ChatML.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class Rendered:
    input_ids: list[int]
    labels: list[int]
    text: str
    trained_spans: list[tuple[int, int]]
    """Character ranges of `text` whose tokens carry loss."""

    @property
    def n_trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def ensure_chat_template(tokenizer) -> bool:
    """Give a template-less tokenizer the fallback; True if it had one of its own."""
    if getattr(tokenizer, "chat_template", None):
        return True
    tokenizer.chat_template = FALLBACK_TEMPLATE
    return False


def _apply(tokenizer, messages: list[dict], *, gen: bool) -> str:
    clean = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tokenizer.apply_chat_template(clean, tokenize=False, add_generation_prompt=gen)


def render(tokenizer, messages: list[dict]) -> Rendered:
    eos = tokenizer.eos_token or ""
    full = _apply(tokenizer, messages, gen=False)
    spans: list[tuple[int, int]] = []
    pieces: list[str] = []  # the final text, built left to right (EOS may be inserted)
    cursor = 0  # position in `full`
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        start, end = _answer_span(tokenizer, messages, i, full, cursor)
        segment = full[start:end]
        pieces.append(full[cursor:start])
        offset = sum(map(len, pieces))
        if eos and eos in segment:
            # Train through the end-of-turn token; what follows it (a newline) is template glue.
            cut = segment.index(eos) + len(eos)
            trained, rest = segment[:cut], segment[cut:]
        else:
            trained = segment.rstrip() + eos
            rest = segment[len(segment.rstrip()):]
        if float(msg.get("weight", 1)) > 0:
            spans.append((offset, offset + len(trained)))
        pieces.append(trained + rest)
        cursor = end
    pieces.append(full[cursor:])
    text = "".join(pieces)

    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    labels = [IGNORE] * len(ids)
    for k, (a, b) in enumerate(enc["offset_mapping"]):
        # A token that overlaps an answer is trained: BPE may glue the space after
        # "assistant:" to the answer's first word.
        if any(a < e and b > s for s, e in spans):
            labels[k] = ids[k]
    return Rendered(ids, labels, text, spans)


def _answer_span(tokenizer, messages, i, full, cursor) -> tuple[int, int]:
    before = _apply(tokenizer, messages[:i], gen=True)
    through = _apply(tokenizer, messages[: i + 1], gen=False)
    if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
        return len(before), len(through)
    # Templates that rewrite history (e.g. drop earlier reasoning) break the prefix
    # property; then find the answer text itself after the previous answer.
    content = messages[i]["content"]
    start = full.find(content, cursor)
    if start < 0:
        raise ValueError("the chat template does not reproduce this answer's text")
    end = start + len(content)
    eos = tokenizer.eos_token or ""
    if eos and full.startswith(eos, end):
        end += len(eos)
    return start, end
