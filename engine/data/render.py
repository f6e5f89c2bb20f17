"""Render a conversation through the model's chat template and mark the trained tokens.

The template decides the text; we only need to know which characters belong to the
assistant's answers. For assistant message i, the answer starts where the template's
rendering of messages[:i] with the generation prompt ends, and ends where the rendering
of messages[:i+1] ends (prefix differences). Templates that rewrite history break that
property; then the answer's own text is located instead. The answer's end-of-turn token
is trained too, so the model learns to stop; if the template emits none, the
tokenizer's EOS is appended. Token ids come from one tokenization of the whole text with
offsets, so the ids are exactly what the model sees at inference.

Reasoning (chain of thought). A *reasoning template* (DeepSeek-R1-Distill and kin) opens
`<think>` in its generation prompt and strips earlier reasoning from history, so it
cannot render a thought itself: the last assistant turn is written here, right after the
template's generation prompt, as `<think>\\n{thought}\\n</think>\\n\\n{answer}` + EOS, the form
the family generates; rows without a thought get an empty think block, as the family
emits when it has nothing to think. For other templates the thought is dropped, or kept
inline in that same `<think>` form when the user asks for it (`reasoning='keep'`).

Tool schemas and calls are written in the template's own tool format when it has one,
else in a system-prompt form (tool_form.py); the calls are trained, the results are not.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import tool_form

IGNORE = -100
REASONING_MODES = ("auto", "keep", "drop")

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

    def marked(self, start: str = "[[", end: str = "]]") -> str:
        """The text with every trained span wrapped in markers (for previews)."""
        out, cur = [], 0
        for a, b in self.trained_spans:
            out += [self.text[cur:a], start, self.text[a:b], end]
            cur = b
        out.append(self.text[cur:])
        return "".join(out)


def ensure_chat_template(tokenizer) -> bool:
    """Give a template-less tokenizer the fallback; True if it had one of its own."""
    if getattr(tokenizer, "chat_template", None):
        return True
    tokenizer.chat_template = FALLBACK_TEMPLATE
    return False


def is_reasoning_template(tokenizer) -> bool:
    t = getattr(tokenizer, "chat_template", None) or ""
    return isinstance(t, str) and "</think>" in t


def reasoning_policy(tokenizer, mode: str) -> str:
    """What happens to a chain of thought: 'think' (native), 'inline' or 'drop'."""
    if is_reasoning_template(tokenizer):
        return "drop" if mode == "drop" else "think"
    return "inline" if mode == "keep" else "drop"


def think_block(thought: str, answer: str) -> str:
    return f"<think>\n{thought.strip()}\n</think>\n\n{answer}"


_TEMPLATE_KEYS = ("role", "content", "tool_calls", "name", "tool_call_id")


def _apply(tokenizer, messages: list[dict], tools, *, gen: bool) -> str:
    clean = [{k: m[k] for k in _TEMPLATE_KEYS if k in m} for m in messages]
    return tokenizer.apply_chat_template(clean, tools=tools, tokenize=False, add_generation_prompt=gen)


def render(tokenizer, messages: list[dict], *, reasoning: str = "auto") -> Rendered:
    if messages and messages[0]["role"] == "text":
        return render_text(tokenizer, messages[0]["content"])
    tools, messages = tool_form.for_template(tokenizer, messages)
    policy = reasoning_policy(tokenizer, reasoning)
    if policy == "inline":
        messages = [
            {**m, "content": think_block(m["reasoning"], m["content"])} if m.get("reasoning") else m for m in messages
        ]
    if policy == "think":
        return _render_think(tokenizer, messages, tools, keep_thought=True)
    if is_reasoning_template(tokenizer):
        return _render_think(tokenizer, messages, tools, keep_thought=False)
    return _render_turns(tokenizer, messages, tools, _apply(tokenizer, messages, tools, gen=False), len(messages))


def generation_prompt(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> str:
    """The text a model answers after: `messages` (a conversation without the answer) and
    the tool schemas it may call, written as render() writes a training row's, so a tuned
    model meets the prompt it was trained on."""
    conv = ([{"role": "tools", "tools": tools}] if tools else []) + list(messages)
    tools, conv = tool_form.for_template(tokenizer, conv)
    return _apply(tokenizer, conv, tools, gen=True)


def _render_think(tokenizer, messages: list[dict], tools, *, keep_thought: bool) -> Rendered:
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    head = _apply(tokenizer, messages[:last], tools, gen=True)
    msg = messages[last]
    if msg.get("tool_calls"):
        raise ValueError("a reasoning template's last answer cannot be a tool call yet")
    thought = msg.get("reasoning", "") if keep_thought else ""
    turn = think_block(thought, msg["content"]) if thought else f"<think>\n\n</think>\n\n{msg['content']}"
    if head.endswith("<think>\n"):  # the generation prompt already opened the block
        turn = turn[len("<think>\n") :]
    eos = tokenizer.eos_token or ""
    full = head + turn + eos
    return _render_turns(tokenizer, messages[:last], tools, full, last, tail=(len(head), len(full)), weight=msg.get("weight", 1))


def _render_turns(tokenizer, messages, tools, full, upto, *, tail=None, weight=1.0) -> Rendered:
    """Tokenize `full`, training each assistant answer among messages[:upto] (+ `tail`)."""
    eos = tokenizer.eos_token or ""
    spans: list[tuple[int, int]] = []
    pieces: list[str] = []  # the final text, built left to right (EOS may be inserted)
    cursor = 0  # position in `full`
    shift = 0
    for i, msg in enumerate(messages[:upto]):
        if msg["role"] != "assistant":
            continue
        start, end = _answer_span(tokenizer, messages, tools, i, full, cursor)
        segment = full[start:end]
        pieces.append(full[cursor:start])
        offset = sum(map(len, pieces))
        if eos and eos in segment:
            # Train through the end-of-turn token; what follows it (a newline) is template glue.
            cut = segment.index(eos) + len(eos)
            trained, rest = segment[:cut], segment[cut:]
        else:
            trained = segment.rstrip() + eos
            rest = segment[len(segment.rstrip()) :]
        if float(msg.get("weight", 1)) > 0:
            spans.append((offset, offset + len(trained)))
        pieces.append(trained + rest)
        shift = sum(map(len, pieces)) - end
        cursor = end
    pieces.append(full[cursor:])
    text = "".join(pieces)
    if tail is not None and float(weight) > 0:
        spans.append((tail[0] + shift, tail[1] + shift))
    return _tokenize(tokenizer, text, spans)


def _tokenize(tokenizer, text: str, spans: list[tuple[int, int]]) -> Rendered:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    labels = [IGNORE] * len(ids)
    for k, (a, b) in enumerate(enc["offset_mapping"]):
        # A token that overlaps an answer is trained: BPE may glue the space after
        # "assistant:" to the answer's first word.
        if any(a < e and b > s for s, e in spans):
            labels[k] = ids[k]
    return Rendered(ids, labels, text, spans)


def render_text(tokenizer, text: str) -> Rendered:
    """Plain text for continued pre-training: BOS (if the model uses one) + text + EOS, all trained."""
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("", add_special_tokens=True)["input_ids"][:1] == [tokenizer.bos_token_id]
    bos = tokenizer.bos_token if adds_bos else ""
    full = bos + text + (tokenizer.eos_token or "")
    return _tokenize(tokenizer, full, [(0, len(full))])


def _answer_span(tokenizer, messages, tools, i, full, cursor) -> tuple[int, int]:
    before = _apply(tokenizer, messages[:i], tools, gen=True)
    through = _apply(tokenizer, messages[: i + 1], tools, gen=False)
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
