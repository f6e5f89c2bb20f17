"""Model inspection, the memory model and the planner on the presets (no GPU needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from engine.fit.memory import GiB, StepShape, breakdown
from engine.fit.plan import budget_from_free
from engine.fit.planner import plan
from engine.models import model_info, presets

CARDS = {"8GB": 8, "12GB": 12, "24GB": 24}
SEVEN_B = [n for n in presets.names() if any(k in n for k in ("-7b", "-8b"))]


@pytest.fixture(scope="module")
def infos():
    return {n: model_info.from_preset(n) for n in presets.names()}


@pytest.fixture(scope="module")
def lengths():
    """Instruction-style data: median ~200 tokens, p95 ~800, max 2,048."""
    rng = np.random.default_rng(0)
    return np.clip(rng.lognormal(np.log(200), 0.85, 3000), 24, 2048).astype(int)


def test_counts_are_exact_for_a_known_model(infos):
    m = infos["qwen2.5-0.5b"]
    assert m.params_total == 494_032_768  # Qwen2.5-0.5B: 0.49 B
    assert m.tied_embeddings and m.params_lm_head == 0 and m.params_embedding == 151936 * 896
    assert (m.layers, m.heads, m.kv_heads, m.head_dim, m.vocab_size) == (24, 14, 2, 64, 151936)
    assert m.params_linear + m.params_embedding + m.params_norm + m.params_other == m.params_total
    assert m.lora_params(16) == 24 * 16 * sum(i + o for i, o in m.linear_shapes.values()) == 8_798_208


def test_memory_terms_move_the_right_way(infos):
    m = infos["qwen2.5-0.5b"]
    base = breakdown(m, StepShape("none", 2, 2, 1024, False))
    q4 = breakdown(m, StepShape("4bit", 2, 2, 1024, False))
    ckpt = breakdown(m, StepShape("none", 2, 2, 1024, True))
    longer = breakdown(m, StepShape("none", 2, 2, 2048, False))
    assert q4["weights"] < base["weights"] and q4["activations"] == base["activations"]
    assert ckpt["activations"] < base["activations"] / 5 and ckpt["weights"] == base["weights"]
    # Chunked cross-entropy: the 152k-vocabulary logits cost one chunk, whatever the length;
    # only the hidden states grow with the tokens.
    from engine.models.loss import CHUNK_BYTES

    assert base["logits"] <= CHUNK_BYTES + 2 * 2048 * m.hidden_size * 2
    assert longer["logits"] - base["logits"] == 2 * 2048 * m.hidden_size * 2


@pytest.mark.parametrize("card", CARDS)
def test_every_preset_that_should_fit_gets_a_plan_within_its_budget(infos, lengths, card):
    """Every preset fits every card but the 14B on 8 GB; each plan's estimate, recomputed
    from its own step shape, is within the budget, and the plan covers the longest row."""
    budget = budget_from_free(CARDS[card] * GiB)
    for name, m in infos.items():
        p = plan(m, budget_bytes=budget, lengths=lengths)
        assert p.fits == (not ("14b" in name and card == "8GB")), (name, card, p.suggestion)
        if not p.fits:
            continue
        assert sum(breakdown(m, p.shape()).values()) == p.estimate_bytes <= budget, name
        assert p.micro_batch * p.grad_accum >= 16 and p.seq_len >= lengths.max(), name
        assert set(p.reasons) >= {"quantization", "gradient_checkpointing", "micro_batch", "seq_len"}


@pytest.mark.parametrize("name", SEVEN_B)
def test_seven_b_class_on_an_8gb_card_chooses_4bit(infos, lengths, name):
    p = plan(infos[name], budget_bytes=budget_from_free(8 * GiB), lengths=lengths)
    assert p.fits and p.quantization == "4bit", (name, p.estimate_bytes / GiB)


def test_a_14b_on_an_8gb_card_is_refused_with_a_suggestion(infos, lengths):
    name = next(n for n in infos if "14b" in n)
    p = plan(infos[name], budget_bytes=budget_from_free(8 * GiB), lengths=lengths)
    assert not p.fits
    assert "smaller model" in p.suggestion or "Shorten" in p.suggestion


def test_a_user_override_is_estimated_and_flagged(infos, lengths):
    m = infos["qwen2.5-1.5b"] if "qwen2.5-1.5b" in infos else infos["qwen2.5-0.5b"]
    budget = budget_from_free(8 * GiB)
    p = plan(m, budget_bytes=budget, lengths=lengths, force={"micro_batch": 64, "quantization": "none"})
    assert (p.micro_batch, p.quantization) == (64, "none")
    assert not p.fits and p.estimate_bytes > budget and p.suggestion


def test_small_model_uses_the_card_rather_than_quantizing(infos, lengths):
    p = plan(infos["smollm2-135m"] if "smollm2-135m" in infos else infos["qwen2.5-0.5b"],
             budget_bytes=budget_from_free(12 * GiB), lengths=lengths)
    assert p.fits and p.quantization == "none"


def test_cpu_plan_keeps_forced_fields(infos, lengths):
    p = plan(infos["qwen2.5-0.5b"], budget_bytes=None, lengths=lengths, effective_batch=4, force={"micro_batch": 2})
    assert (p.device, p.micro_batch, p.grad_accum, p.quantization) == ("cpu", 2, 2, "none")


def test_plan_cli_json_has_the_documented_keys():
    r = subprocess.run([sys.executable, "-m", "engine.cli", "plan", "--model", "qwen2.5-0.5b", "--vram", "8GB", "--json"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("fits", "quantization", "micro_batch", "grad_accum", "gradient_checkpointing", "seq_len",
                "lora_r", "budget_bytes", "estimate_bytes", "breakdown"):
        assert key in d
    assert d["fits"] and d["estimate_bytes"] <= d["budget_bytes"] == budget_from_free(8 * GiB)


@pytest.mark.parametrize("name", ["deepseek-r1-distill-qwen-7b", "deepseek-llm-7b", "deepseek-r1-distill-llama-8b", "llama-3.1-8b"])
def test_7b_8b_train_2048_tokens_at_rank_16_on_8gb(infos, name):
    """Issue 7: whole 2,048-token examples on an 8 GB card, with the embedding table in RAM."""
    p = plan(infos[name], budget_bytes=budget_from_free(8 * GiB), lengths=np.full(64, 2048))
    assert p.fits and p.seq_len == 2048 and p.lora_r == 16 and p.quantization == "4bit"
    assert p.estimate_bytes <= p.budget_bytes


@pytest.mark.parametrize("name", ["deepseek-r1-distill-llama-8b", "llama-3.1-8b"])
def test_8b_needs_lean_memory_for_rank_16_at_4096_tokens_on_8gb(infos, name):
    """The 8B's larger MLP and head leave no room for rank 16 at 4,096 tokens unless the
    layer inputs wait in RAM; that RAM stays within the RAM budget."""
    from engine.fit.memory import ram_bytes

    m, budget = infos[name], budget_from_free(8 * GiB)
    p = plan(m, budget_bytes=budget, lengths=np.full(64, 4096))
    assert p.fits and p.lean_memory and p.lora_r == 16 and p.seq_len == 4096
    shape = StepShape("4bit", 2, p.micro_batch, 4096, True, 16, optimizer=p.optimizer, embeddings_on_cpu=p.embeddings_on_cpu, lean=True)
    assert ram_bytes(m, shape) <= p.ram_budget_bytes
    plain = plan(m, budget_bytes=budget, lengths=np.full(64, 4096), force={"lean_memory": False})
    assert not plain.lean_memory and not (plain.fits and plain.seq_len == 4096 and plain.lora_r == 16)


def test_lean_memory_is_not_used_where_it_is_not_needed(infos, lengths):
    for name in ("qwen2.5-0.5b", "qwen2.5-1.5b", "deepseek-r1-distill-qwen-7b"):
        p = plan(infos[name], budget_bytes=budget_from_free(24 * GiB), lengths=lengths)
        assert p.fits and not p.lean_memory, name
        assert "not needed" in p.reasons["lean_memory"]


def test_lean_memory_estimate_is_smaller_and_keeps_activations_in_ram(infos):
    m = infos["deepseek-r1-distill-qwen-7b"]
    s = dict(quantization="4bit", micro_batch=1, seq_len=8192, gradient_checkpointing=True, optimizer="adamw_8bit", embeddings_on_cpu=True)
    plain, lean = breakdown(m, StepShape(**s)), breakdown(m, StepShape(**s, lean=True))
    assert lean["activations"] < plain["activations"] / 2
    assert {k: v for k, v in lean.items() if k not in ("activations", "overhead")} == {
        k: v for k, v in plain.items() if k not in ("activations", "overhead")}


def test_forced_lean_memory_past_its_ram_limit_is_refused_with_a_suggestion_that_fits(infos):
    """Lean memory keeps layers x tokens x hidden in RAM, within the RAM budget (8 GiB when
    unknown): 32k-token rows of a 7B exceed it, and truncating them to what fits would lose
    half the data. The plan is refused (not a crash), and the suggested length fits."""
    m, budget = infos["deepseek-r1-distill-qwen-7b"], budget_from_free(24 * GiB)
    p = plan(m, budget_bytes=budget, lengths=np.full(16, 32768), force={"lean_memory": True, "gradient_checkpointing": True})
    assert not p.fits and "At most" in p.suggestion
    n = int(p.suggestion.split("At most ")[1].split()[0])
    assert plan(m, budget_bytes=budget, lengths=np.full(16, n)).fits
    assert not plan(m, budget_bytes=budget, lengths=np.full(16, 65536)).fits


def test_a_recovered_plan_is_estimated_for_its_own_shape(infos, lengths):
    """Calibration compares the measured step with the plan that ran: after a recovery its
    figures and reasons are those of the smaller shape, not the first plan's."""
    from engine.fit.planner import recovered

    m = infos["qwen2.5-1.5b"]
    p = plan(m, budget_bytes=budget_from_free(12 * GiB), lengths=lengths)
    assert p.micro_batch >= 2
    q = recovered(m, p, "calibration found the step too large", micro_batch=p.micro_batch // 2)
    assert q.micro_batch * q.grad_accum >= p.effective_batch and q.grad_accum > p.grad_accum
    assert q.breakdown == breakdown(m, q.shape()) and q.estimate_bytes == sum(q.breakdown.values()) < p.estimate_bytes
    assert "calibration found the step too large" in q.reasons["micro_batch"] and q.reasons["lora_r"] == p.reasons["lora_r"]


def test_two_cards_plan_for_the_smaller_and_split_each_step(infos, lengths):
    """--gpus 2: each card holds the whole model (data-parallel), so the plan is the one
    card's plan for the smaller card, with half the accumulation per process."""
    from engine.config import RunConfig
    from engine.fit.planner import resolve, target_for
    from engine.hardware import GpuInfo, HardwareInfo

    def card(i, free_gb):
        return GpuInfo(i, f"card {i}", free_gb * GiB, free_gb * GiB, 0, "560", (8, 6))

    hw = HardwareInfo(gpus=[card(0, 24), card(1, 12)], chosen=0, ram_total_bytes=64 * GiB, ram_available_bytes=48 * GiB)
    cfg = RunConfig()
    one = resolve(cfg, infos["qwen2.5-7b"], target_for(cfg, hw), lengths)
    cfg.train.gpus = 2
    two = resolve(cfg, infos["qwen2.5-7b"], target_for(cfg, hw), lengths)
    assert two.budget_bytes == budget_from_free(12 * GiB) < one.budget_bytes  # the smaller card
    assert two.processes == 2 and two.examples_per_step == two.micro_batch * two.grad_accum * 2 >= two.effective_batch == 16
    assert two.grad_accum == max(1, -(-16 // (two.micro_batch * 2)))
    assert "Data-parallel on 2 GPUs" in two.reasons["processes"] and "on each of 2 GPUs" in two.headline()
    assert "processes" not in one.reasons and one.processes == 1
