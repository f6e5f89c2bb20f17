"""Issue 17's acceptance on the demo model (CPU): the identity set of
scripts/identity_data.py trained twice with `tunedesk train FILE`:

- "defaults": no tuning flags at all (one click): early stopping, the best adapter,
  replay of the base model's answers, everything sized to the data;
- "no-guards": the same, with --no-early-stop --replay-share 0;
- "replay40": the defaults with --replay-share 0.4 (how much replay the demo model needs).

Then each tuned model answers 10 identity questions that are not in the file, and the
forgetting meter's figures come from the run's summary.json / probe.json. Prints and
writes JSON (default bench/results/forgetting_check.json).

    python scripts/forgetting_check.py [--out DIR] [--only defaults|no-guards|replay40] [--json FILE]

With --only, the other runs' figures already in the JSON file are kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import identity_data

# "replay40": the defaults with twice the replay share, to choose the default share by measurement.
RUNS = {"defaults": [], "no-guards": ["--no-early-stop", "--replay-share", "0"], "replay40": ["--replay-share", "0.4"]}
IDENTITY_PASS = 8  # of 10
GENERAL_MARGIN = "general probe: at most 1 answer lost against the base model and its reference loss up at most 15%"


def train(data: Path, out: Path, name: str, flags: list[str]) -> float:
    start = time.monotonic()
    cmd = [sys.executable, "-m", "engine.cli", "train", str(data), "--out", str(out), "--name", name, "--json-events", *flags]
    with open(out / f"{name}.events.jsonl", "w", encoding="utf-8") as log:
        r = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{name}: training failed (see {out / (name + '.events.jsonl')})")
    return time.monotonic() - start


def measure(run: Path) -> dict:
    from engine.chat import ChatSession, GenerationSettings
    from engine.eval import probe as meter

    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    session = ChatSession(run, device="cpu")
    settings = GenerationSettings(max_new_tokens=48)
    answers = [{"q": q, "a": session.answer(q, settings=settings)} for q in identity_data.UNSEEN]
    hits = sum(identity_data.names_identity(x["a"]) for x in answers)
    # The meter's answers scored again here, base (adapter off) and tuned alike, with today's probe
    # settings: runs trained under other settings compare on the same footing.
    items = meter.items()
    scored = {}
    for side in ("base", "tuned"):
        with session.adapter(side == "base"):
            scored[side] = meter.answers(session.model, session.tokenizer, items, session.device)
    p = meter.verdict(summary["probe"]["loss_base"], summary["probe"]["loss"], scored["base"], scored["tuned"])
    p.update(task=summary["probe"]["task"], general=summary["probe"]["general"])
    paris = next(x for x in scored["tuned"]["answers"] if x["prompt"] == "What is the capital of France?")
    kept = (p.get("lost", 0) <= 1 and (p.get("loss_change") or 0) <= 0.15)
    return {
        "identity_hits": hits, "identity_of": len(answers), "identity_pass": hits >= IDENTITY_PASS,
        "general_kept": kept, "capital_of_france": paris["answer"], "paris": paris["ok"],
        "probe": {k: p.get(k) for k in ("loss_base", "loss", "loss_change", "passed_base", "passed", "total", "lost",
                                        "lost_prompts", "verdict", "task", "general", "warning")},
        "steps": summary["steps"], "total_steps": summary["total_steps"], "best_step": summary.get("best_step"),
        "stopped_early": summary.get("stopped_early"), "replay_share": summary.get("replay_share"),
        "replay_rows": summary.get("replay_rows"), "eval_loss_start": summary.get("eval_loss_start"),
        "best_eval_loss": summary.get("best_eval_loss"), "eos": (summary.get("eos") or {}).get("ok"),
        "answers": answers, "probe_answers": scored,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/forgetting_check")
    ap.add_argument("--only", choices=list(RUNS), action="append", default=None, help="these runs only (repeatable)")
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "forgetting_check.json"))
    ap.add_argument("--measure-only", action="store_true", help="measure runs already trained in --out")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = identity_data.write(out / "identity.jsonl")
    result = {"model": "demo (SmolLM2-135M-Instruct, CPU)", "data": "scripts/identity_data.py: 100 rows, EN + ZH",
              "margin": GENERAL_MARGIN, "runs": {}}
    if a.only and Path(a.json).is_file():  # some runs only: the others' figures are kept
        result["runs"] = {k: v for k, v in json.loads(Path(a.json).read_text(encoding="utf-8"))["runs"].items()
                          if k in RUNS}
    for name, flags in RUNS.items():
        if a.only and name not in a.only:
            continue
        seconds = None if a.measure_only else train(data, out, name, flags)
        result["runs"][name] = {"flags": flags, "train_s": seconds and round(seconds), **measure(out / name)}
        print(json.dumps({name: {k: v for k, v in result["runs"][name].items() if k != "answers"}}, ensure_ascii=False,
                         indent=1), flush=True)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
