"""Acceptance (issue 20): GRPO on the demo model (SmolLM2-135M-Instruct, CPU) raises the
mean reward of a checkable task within a few steps, and its sampled answers show it.

Stated before the test was first run: on two-digit additions ("Reply with the number
only.") with the length reward length:1-8 (1 for an answer of at most 8 tokens, falling
to 0 at 16), 4 answers per prompt, 2 prompts per step, answers of up to 12 tokens, the
mean reward of the last 2 of 8 steps is at least 0.25 above that of the first 2 (on a
0-1 scale), and the sampled answers are at least 2 tokens shorter on average.
(The demo's untuned answers restate the sum in a sentence and run to the 12-token
limit; shorter ones exist in most groups, so the groups have something to learn from.)
"""

from __future__ import annotations

from grpo_task import write_additions

from engine.config import RunConfig
from engine.reporting import RecordingReporter
from engine.training.train import Trainer

STEPS = 8
MARGIN = 0.25


def test_grpo_raises_the_demo_models_reward_and_its_answers_show_it(demo_folder, tmp_path):
    cfg = RunConfig()
    cfg.model.source, cfg.data.path = "demo", str(write_additions(tmp_path / "add.jsonl", n=24))
    cfg.method.name, cfg.method.rewards = "grpo", ["length:1-8"]
    cfg.method.group, cfg.method.completion_tokens = 4, 12
    cfg.out_dir, cfg.name = str(tmp_path), "grpo"
    t = cfg.train
    t.max_steps, t.lr, t.effective_batch, t.micro_batch, t.eval_every, t.seed = STEPS, 2e-3, 2, 2, STEPS, 0
    rep = RecordingReporter()
    trainer = Trainer(cfg, rep)
    trainer.setup()
    summary = trainer.fit()
    steps = [m for m in rep.of("metrics") if m["step"] > 0 and "reward_mean" in m]
    assert len(steps) == STEPS and summary["status"] == "finished"
    first, last = steps[:2], steps[-2:]

    def mean(rows, key):
        return sum(r[key] for r in rows) / len(rows)

    print({k: [round(r[k], 3) for r in steps] for k in ("reward_mean", "completion_length")})
    assert mean(last, "reward_mean") >= mean(first, "reward_mean") + MARGIN
    assert mean(last, "completion_length") <= mean(first, "completion_length") - 2
    # The generations show it: the last step's answers are shorter and score higher than the first's.
    shown = [g for g in rep.of("generations") if g["split"] == "train"]
    before, after = shown[0]["samples"], shown[-1]["samples"]
    assert sum(s["tokens"] for s in after) < sum(s["tokens"] for s in before)
    assert sum(s["reward"] for s in after) > sum(s["reward"] for s in before)
    r = summary["rewards"]
    assert r["last_steps"]["reward_mean"] > r["first_steps"]["reward_mean"]
