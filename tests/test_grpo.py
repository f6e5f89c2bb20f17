"""GRPO (engine/training/objectives/grpo.py): its rows, its advantages and loss, its plan
and its recovery ladder, and the real loop on a tiny random model. The demo model's
learning test is tests/test_grpo_learns.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from grpo_task import write_additions

from engine.config import RunConfig
from engine.data import prepare
from engine.data.render import generation_prompt
from engine.errors import DataError
from engine.fit import planner
from engine.fit.memory import GiB, kv_cache_bytes
from engine.models import model_info
from engine.models.loss import loss_sum, token_logps
from engine.reporting import RecordingReporter
from engine.training.objectives import method_data
from engine.training.objectives.grpo import advantages
from engine.training.train import Trainer


def grpo_cfg(path: Path, model: str = "demo", rewards=("match",), **method) -> RunConfig:
    cfg = RunConfig()
    cfg.model.source, cfg.data.path = model, str(path)
    cfg.method.name, cfg.method.rewards = "grpo", list(rewards)
    for k, v in method.items():
        setattr(cfg.method, k, v)
    return cfg


def test_advantages_are_normalized_within_each_group():
    adv = advantages([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5], 4)
    assert adv[0] == pytest.approx(0.75 / (0.5 + 1e-4)) and adv[1] == pytest.approx(-0.25 / (0.5 + 1e-4))
    assert sum(adv[:4]) == pytest.approx(0) and adv[4:] == [0.0] * 4  # a group that scored alike teaches nothing


def test_token_logps_are_the_answer_tokens_cross_entropy(tiny_model_folder):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_folder)
    ids = torch.randint(0, 1000, (2, 9))
    labels = torch.full_like(ids, -100)
    labels[0, 5:], labels[1, 3:7] = ids[0, 5:], ids[1, 3:7]
    with torch.no_grad():
        lp = token_logps(model, ids, labels)
        assert lp.shape == (4 + 4,) and (lp < 0).all()
        assert float(-lp.sum()) == pytest.approx(float(loss_sum(model, ids, None, labels)), rel=1e-5)
        hot = token_logps(model, ids, labels, temperature=2.0)  # the sampled distribution: logits / temperature
    assert float(hot.mean()) != pytest.approx(float(lp.mean()))


def test_prompts_are_the_generation_prompt_and_references_the_final_answers(demo_tokenizer, tmp_path):
    rows = [{"Question": "What is 2 + 3?", "Complex_CoT": "Two and three make five.", "Response": "5"},
            {"Question": "Name the red planet.", "Complex_CoT": "The fourth planet looks red.", "Response": "Mars"},
            {"Question": "Say nothing.", "Complex_CoT": "Nothing to say.", "Response": " "},
            {"Question": "Think only.", "Complex_CoT": "Hmm.", "Response": "<think>x</think>"}]
    path = tmp_path / "cot.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = grpo_cfg(path)
    cfg.data.val_share, cfg.data.reasoning = 0.0, "keep"
    data = method_data(cfg, prepare(cfg.data, demo_tokenizer), demo_tokenizer)
    first = next(e for e in data.train if e.row == 1)
    want = demo_tokenizer(generation_prompt(demo_tokenizer, [{"role": "user", "content": "What is 2 + 3?"}]),
                          add_special_tokens=False)["input_ids"]
    assert [int(x) for x in first.input_ids] == want and not first.trained.any()
    # The reference is the trained answer as rendered (the thought inline: reasoning=keep); the rewards take its end.
    assert data.references == {1: "<think>\nTwo and three make five.\n</think>\n\n5",
                               2: "<think>\nThe fourth planet looks red.\n</think>\n\nMars"}
    assert [(p.row, p.reason) for p in data.skipped][-1] == (
        4, "no reference answer to check the sampled answers against (its answer is empty after the chain of thought)")
    assert list(data.plan_inputs()["prompts"]) == [len(e) for e in data.whole_train]  # a prompt alone: all of it


def test_a_file_without_prompts_is_refused_in_plain_words(demo_tokenizer, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Plain text to continue.\n\nMore plain text here.\n", encoding="utf-8")
    cfg = grpo_cfg(path, rewards=("format",))
    with pytest.raises(DataError, match=r"notes.txt: no row has a prompt for GRPO \(row \d+: no prompt to answer"):
        method_data(cfg, prepare(cfg.data, demo_tokenizer), demo_tokenizer)


def test_plan_holds_group_answers_per_prompt_and_says_so():
    info = model_info.from_preset("deepseek-r1-distill-qwen-7b")
    prompts = np.array([60, 120, 300])
    cfg = grpo_cfg(Path("x.jsonl"), group=4, completion_tokens=256)
    cfg.train.vram_gb = 12
    p = planner.resolve(cfg, info, planner.target_for(cfg, None, cuda=True), prompts + 500, train_rows=3,
                        tails=np.array([500] * 3), prompts=prompts)
    assert p.fits and p.method == "grpo" and p.group == 4 and p.completion_tokens == 256
    assert p.seq_len == 576  # the longest prompt + the answer, not the rows' own 800-token answers
    assert "GRPO: 4 answers of up to 256 tokens" in p.reasons["method"] and "4 sampled answers" in p.reasons["micro_batch"]
    assert p.headline().startswith("GRPO, 4 answers of up to 256 tokens per prompt")
    # The pass over G sequences costs what SFT's micro-batch of G x micro_batch rows costs.
    sft = RunConfig()
    sft.train.vram_gb, sft.train.micro_batch, sft.data.max_seq_len = 12, p.micro_batch * 4, p.seq_len
    sft.model.quantization, sft.model.gradient_checkpointing = p.quantization, p.gradient_checkpointing
    sft.train.optimizer, sft.model.embeddings_on_cpu, sft.model.lean_memory = p.optimizer, p.embeddings_on_cpu, p.lean_memory
    q = planner.resolve(sft, info, planner.target_for(sft, None, cuda=True), prompts + 500, train_rows=3)
    assert p.breakdown["activations"] == q.breakdown["activations"]
    # Generation's KV cache: layers x 2 x kv_heads x head_dim x 2 bytes per token.
    assert kv_cache_bytes(info, 1, 2) == info.layers * 2 * info.kv_heads * info.head_dim * 2
    assert p.breakdown["generation"] >= 0 and p.estimate_bytes <= p.budget_bytes <= 12 * GiB


def test_recovery_shortens_the_answers_before_the_prompts(tmp_path):
    from engine.fit.card_fit import CardFit

    info = model_info.from_preset("deepseek-r1-distill-qwen-7b")
    cfg = grpo_cfg(tmp_path / "x.jsonl", group=4, completion_tokens=256)
    cfg.train.vram_gb = 8
    p = planner.resolve(cfg, info, planner.target_for(cfg, None, cuda=True), np.array([400]), train_rows=8,
                        prompts=np.array([100]))
    card = CardFit(cfg, info, None, RecordingReporter())
    card.plan = p.replace(micro_batch=1, gradient_checkpointing=True, lean_memory=True)
    changes, what = card.shrink()
    assert changes == {"completion_tokens": 192, "seq_len": p.seq_len - 64} and "answers shortened to 192" in what
    card.plan = card.plan.replace(completion_tokens=32, seq_len=160)
    changes, _ = card.shrink()
    assert changes == {"seq_len": 120}  # then the prompts, a quarter shorter…
    card.plan = card.plan.replace(seq_len=100)
    assert card.shrink()[0] == {"seq_len": 64 + 32}  # …always leaving the answer its room beside a prompt


@pytest.fixture(scope="module")
def tiny_grpo_run(tiny_model_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo")
    cfg = grpo_cfg(write_additions(out / "add.jsonl", n=12), str(tiny_model_folder), rewards=("match", "length:1-4"),
                   group=3, completion_tokens=6, kl=0.1)
    cfg.out_dir, cfg.name = str(out), "g"
    cfg.train.max_steps, cfg.train.effective_batch, cfg.train.micro_batch, cfg.train.eval_every = 2, 2, 1, 2
    rep = RecordingReporter()
    t = Trainer(cfg, rep)
    t.setup()
    return t, t.fit(), rep


def test_the_loop_runs_grpo_and_reports_rewards_and_generations(tiny_grpo_run):
    t, summary, rep = tiny_grpo_run
    assert summary["status"] == "finished" and summary["steps"] == 2 and t.plan.method == "grpo"
    steps = [m for m in rep.of("metrics") if m["step"] > 0]
    want = {"loss", "reward_mean", "reward_std", "reward_match", "reward_length", "completion_length", "kl", "grad_norm"}
    assert all(want <= set(m) for m in steps)
    assert all(0 < m["completion_length"] <= 6 and 0 <= m["reward_mean"] <= 2 and m["kl"] >= 0 for m in steps)
    assert all(m["trained_tokens"] <= 2 * 3 * 6 and m["tokens"] > m["trained_tokens"] for m in steps)
    evals = [m for m in rep.of("metrics") if "eval_reward_mean" in m]
    assert [m["step"] for m in evals] == [0, 2] and not any("eval_loss" in m for m in evals)
    gens = rep.of("generations")
    train = [g for g in gens if g["split"] == "train"]
    assert [g["step"] for g in train] == [1, 2] and all(len(g["samples"]) == 3 for g in train)
    s = train[0]["samples"][0]
    assert set(s) == {"row", "prompt", "completion", "ended", "tokens", "reward", "parts", "reference"}
    assert s["prompt"].rstrip().endswith("Reply with the number only.") or "Reply with the number only." in s["prompt"]
    assert s["reference"].isdigit() and set(s["parts"]) == {"match", "length"}
    assert s["reward"] == pytest.approx(sum(s["parts"].values()))
    assert set(summary["rewards"]["first_steps"]) == {"reward_mean", "reward_match", "reward_length"}
    assert any(e[0] == "status" and e[1]["text"].startswith("Rewards: mean") for e in rep.events)
    assert summary["eos"] is None  # GRPO's prompts carry no answer to size the EOS check by


def test_calibration_probe_runs_grpos_real_shape(tiny_grpo_run):
    t, _, _ = tiny_grpo_run
    assert t.probe()  # sampling G full-length answers, then the pass (and the KL pass) over them
    assert all(p.grad is None for p in t.model.parameters() if p.requires_grad)


def test_out_of_memory_while_sampling_retries_the_step_with_fewer_prompts_per_pass(tiny_model_folder, tmp_path):
    """Sampling (no gradients) runs out of memory above one prompt per pass (a simulated CUDA
    error): the ranks agree on it together with the step's token count, and the step is
    retried at micro-batch 1 with the same 2 prompts per step."""
    cfg = grpo_cfg(write_additions(tmp_path / "add.jsonl", n=12), str(tiny_model_folder), rewards=("match",),
                   group=2, completion_tokens=4)
    cfg.out_dir, cfg.name = str(tmp_path), "oom"
    cfg.train.max_steps, cfg.train.effective_batch, cfg.train.micro_batch, cfg.train.eval_every = 2, 2, 2, 2
    t = Trainer(cfg, RecordingReporter())
    t.setup()
    decoder = t.model.get_base_model().get_decoder()
    real, real_rollout = decoder.forward, t.objective._rollout
    sampling = []

    def forward(*args, input_ids=None, **kw):
        if sampling and input_ids.shape[0] > 2:  # 2 prompts x 2 answers
            raise torch.OutOfMemoryError("CUDA out of memory (simulated, while sampling)")
        return real(*args, input_ids=input_ids, **kw)

    def rollout(examples):
        sampling.append(1)
        try:
            return real_rollout(examples)
        finally:
            sampling.pop()

    decoder.forward, t.objective._rollout = forward, rollout
    summary = t.fit()
    assert summary["status"] == "finished" and summary["steps"] == 2 and summary["oom_recoveries"] == 1
    assert (t.plan.micro_batch, t.plan.grad_accum) == (1, 2)
    assert all(m["trained_tokens"] > 0 for m in t.history if m["step"] > 0)
