"""Issue 22's acceptance on the demo model: a short training on a tool-calling set, then
`compare` with the set's schemas on questions the training never saw; the tuned answer
must be a well-formed call with the right function and arguments.

    python scripts/tool_call_acceptance.py [--out DIR] [--steps 40] [--run DIR]

Everything goes through the product's commands (`tunedesk train`, `tunedesk compare
--tools`), the planner choosing the rest. On 2 shared CPU cores the training takes 10-40
minutes (so this is a script, not a test; tests/test_tool_parts_and_compare.py checks the
pieces on a tiny model). --run DIR compares an existing run instead of training one.
Exit status 0 when every tuned answer is the expected call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tool_set import UNSEEN_CITY, write_tool_set, write_tools  # noqa: E402 - after the path

# Questions the training rows never ask: an unseen city, an unseen amount and pair of currencies.
CHECKS = [
    (f"What's the weather like in {UNSEEN_CITY} right now?", {"name": "get_weather", "arguments": {"city": UNSEEN_CITY}}),
    (f"What time is it in {UNSEEN_CITY}?", {"name": "get_time", "arguments": {"city": UNSEEN_CITY}}),
    ("How much is 75 SEK in NOK?",
     {"name": "convert_currency", "arguments": {"amount": 75, "from_currency": "SEK", "to_currency": "NOK"}}),
]


def cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "engine.cli", *args]
    print("$", " ".join(cmd[1:]), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for the dataset, the schemas and the run")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--run", type=Path, default=None, help="compare this run instead of training one")
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="tool-acceptance-"))
    out.mkdir(parents=True, exist_ok=True)
    schemas = write_tools(out / "schemas.json")
    run = a.run
    if run is None:
        data = write_tool_set(out / "tools.jsonl")
        r = cli("train", str(data), "--max-steps", str(a.steps), "--lr", str(a.lr), "--out", str(out), "--name", "tools",
                "--eval-every", "20", "--json-events")
        if r.returncode != 0:
            print(r.stderr[-3000:])
            return 1
        events = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        print("eval loss:", [round(e["eval_loss"], 4) for e in events if "eval_loss" in e])
        run = out / "tools"
    passed = True
    for prompt, want in CHECKS:
        r = cli("compare", str(run), "--prompt", prompt, "--tools", str(schemas), "--max-new-tokens", "60", "--json")
        if r.returncode != 0:
            print(r.stderr[-3000:])
            return 1
        got = json.loads(r.stdout)
        ok = got["tuned_calls"] == [want]
        passed &= ok
        print(json.dumps({"prompt": prompt, "base": got["base"], "base_calls": got["base_calls"], "tuned": got["tuned"],
                          "tuned_calls": got["tuned_calls"], "tuned_is_the_expected_call": ok}, ensure_ascii=False, indent=1))
    print("PASS" if passed else "FAIL", f"(run: {run})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
