"""Chat and Compare stop where the forgetting meter, replay and the EOS check stop
(engine/eval/generate.py's stop_ids): on the EOS or on the chat template's end-of-turn
marker, where a tokenizer's EOS is not that marker (Qwen's base models: <|endoftext|>
and <|im_end|>)."""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.chat import ChatSession, GenerationSettings
from engine.eval.generate import stop_ids
from engine.runs import CONFIG


def test_chat_stops_on_the_templates_end_of_turn(tiny_model_folder, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_folder)
    tok.eos_token = "<|endoftext|>"
    end_turn = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id != end_turn and set(stop_ids(tok)) == {tok.eos_token_id, end_turn}
    model = AutoModelForCausalLM.from_pretrained(tiny_model_folder)
    # An output head that always says the end-of-turn marker: the answer should end at once.
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[end_turn] = 5.0
    model.lm_head = head
    (tmp_path / CONFIG).write_text("{}", encoding="utf-8")
    session = ChatSession.attach(tmp_path, get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])), tok)
    for base in (True, False):  # Compare's two sides
        steps: list[int] = []

        def counted(steps=steps) -> bool:  # asked once a generated token
            steps.append(1)
            return False

        text = session.answer("Hello", base=base, settings=GenerationSettings(max_new_tokens=12), stop=counted)
        assert len(steps) == 1 and text == ""  # one token, the marker; not 12
