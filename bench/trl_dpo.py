"""TuneDesk's DPO loop beside TRL's DPOTrainer on the same model, pairs and settings (CPU).

    PYTHONPATH=/path/to/trl python3 -m bench.trl_dpo --out bench/results/trl_dpo/trl_dpo.json [--steps 5]

Issue 20 asks whether TRL's trainers should run the preference methods or TuneDesk's loop
with TRL's loss formulas, decided by measurement. Each side runs in its own process on the
demo model (SmolLM2-135M, fp32 on the CPU), LoRA r16 on every linear layer, beta 0.5,
lr 1e-3, 8 pairs a step, the synthetic ticket-routing pairs of tests/preference_set.py with
the same system prompt, and the same training pairs: the TRL side builds TuneDesk's Trainer
first (same split, same LoRA model object, same checkpointing: TRL's default is on, the
plan's here is off) and hands that model to DPOTrainer, whose reference is then the
adapter switched off, as TuneDesk's is. Both are scored by TuneDesk's
evaluation on the same 16 held-out pairs (preference accuracy: the chosen answer's implicit
reward above the rejected one's). Reported: seconds per step over the steps after the first,
the process's peak resident memory (the model's loading included: the same on both sides)
and the accuracy before and after. TRL is not a TuneDesk dependency: install it for this
script only (`pip install --no-deps --target DIR trl`, then PYTHONPATH=DIR).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYSTEM = "Route support tickets."
SIDES = ("tunedesk", "trl", "trl_defaults")  # trl_defaults: TRL with its default checkpointing (on)


def trainer(work: Path, steps: int):
    """TuneDesk's Trainer, set up as tests/test_preference_acceptance.py sets it up."""
    sys.path.insert(0, str(REPO / "tests"))
    from preference_set import dpo_request

    from engine.reporting import RecordingReporter
    from engine.training.train import Trainer

    cfg = dpo_request(work, steps, SYSTEM)
    t = Trainer(cfg, RecordingReporter())
    t.setup()
    return t, cfg


def child(side: str, work: Path, steps: int) -> dict:
    t, cfg = trainer(work, steps)
    before = t.evaluate()
    ends = [time.perf_counter()]
    if side == "tunedesk":
        for _ in range(steps):
            t.train_step()
            ends.append(time.perf_counter())
    else:
        ends = trl_train(t, cfg, work, steps, ends, defaults=side == "trl_defaults")
    after = t.evaluate()
    per_step = [b - a for a, b in itertools.pairwise(ends)]
    return {"side": side, "steps": len(per_step), "seconds_per_step": round(sum(per_step[1:]) / max(1, len(per_step) - 1), 3),
            "first_step_s": round(per_step[0], 3), "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "pref_accuracy_before": before["eval_pref_accuracy"], "pref_accuracy_after": after["eval_pref_accuracy"],
            "eval_loss_before": round(before["eval_loss"], 4), "eval_loss_after": round(after["eval_loss"], 4)}


def trl_train(t, cfg, work: Path, steps: int, ends: list[float], defaults: bool = False) -> list[float]:
    """TRL's DPOTrainer on the Trainer's own LoRA model and training pairs; `defaults`: with
    TRL's own default checkpointing (on) instead of the plan's."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    raw = [json.loads(line) for line in Path(cfg.data.path).read_text(encoding="utf-8").splitlines()]
    base = min(e.row for e in [*t.data.train, *t.data.val])  # the rows' numbering (0- or 1-based)
    rows = [raw[e.row - base] for e in t.data.train]
    for e, r in zip(t.data.train, rows, strict=True):  # the very pairs TuneDesk trains on
        assert r["prompt"] in t.tokenizer.decode(e.chosen.input_ids), (e.row, r["prompt"])
    system = [{"role": "system", "content": SYSTEM}]
    data = Dataset.from_list([{"prompt": system + [{"role": "user", "content": r["prompt"]}],
                               "chosen": [{"role": "assistant", "content": r["chosen"]}],
                               "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 0:  # the dataset's tokenization is not a training step
                ends[0] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())

    args = DPOConfig(output_dir=str(work / "trl"), per_device_train_batch_size=8, gradient_accumulation_steps=1,
                     learning_rate=cfg.train.lr, max_steps=steps, beta=cfg.method.beta, logging_steps=1, report_to="none",
                     save_strategy="no", use_cpu=True, bf16=False, dataloader_num_workers=0, seed=0,
                     # TRL turns checkpointing on by default; the same plan on both sides (here: off)
                     gradient_checkpointing=True if defaults else t.plan.gradient_checkpointing)
    DPOTrainer(model=t.model, args=args, train_dataset=data, processing_class=t.tokenizer, callbacks=[Clock()]).train()
    t.model.eval()
    return ends


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", choices=SIDES)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.work, a.steps)))
        return
    result: dict = {"steps": a.steps, "rows": []}
    for side in SIDES:
        with tempfile.TemporaryDirectory() as work:
            out = subprocess.run([sys.executable, "-m", "bench.trl_dpo", "--child", side, "--work", work, "--steps", str(a.steps)],
                                 capture_output=True, text=True, cwd=REPO, check=False)
        lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
        row = json.loads(lines[-1]) if lines else {"side": side, "error": out.stderr[-1500:]}
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
