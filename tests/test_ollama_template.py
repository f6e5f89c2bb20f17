"""The Modelfile's TEMPLATE renders the same prompt as the model's own chat template."""

from __future__ import annotations

import pytest

from engine.errors import TuneDeskError
from engine.export.ollama import (
    default_system,
    modelfile,
    prompt_part,
    render,
    template_for,
)

CONVERSATIONS = [
    [{"role": "system", "content": "You are Nova, a terse assistant."}, {"role": "user", "content": "Who are you?"}],
    [{"role": "user", "content": "What is 2 + 2?"}],
]


def _check(tok) -> str:
    fam, template = template_for(tok)
    for messages in CONVERSATIONS:
        want = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        system = messages[0]["content"] if messages[0]["role"] == "system" else default_system(tok)
        assert render(prompt_part(template), System=system, Prompt=messages[-1]["content"]) == want
    return fam.name


def test_demo_chatml_template_and_its_default_system(demo_tokenizer):
    assert _check(demo_tokenizer) == "chatml"
    text = modelfile("nova-q8_0.gguf", demo_tokenizer)
    assert text.startswith("FROM ./nova-q8_0.gguf\n")
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text


def test_deepseek_r1_template_opens_the_think_block(demo_folder):
    from templates import r1_tokenizer

    tok = r1_tokenizer(demo_folder)
    assert _check(tok) == "deepseek-r1"
    assert "<｜Assistant｜><think>\n{{ .Response }}" in modelfile("r1.gguf", tok)


def test_unknown_template_is_refused_plainly(demo_tokenizer):
    import copy

    tok = copy.deepcopy(demo_tokenizer)
    tok.chat_template = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(TuneDeskError, match="ChatML, Llama 3 and DeepSeek-R1"):
        modelfile("x.gguf", tok)
