"""Labeled data, end to end on the demo model, on the CPU: an IMDB-shaped sentiment set
(a Parquet file with a ClassLabel `label` column, tests/sentiment.py) trains through
`python -m engine.cli train`, then `compare --accuracy` answers every validation row with
the base model and the tuned one. Exits 0 when accuracy after training beats before.

    python scripts/labeled_demo.py [--rows 300] [--steps 40] [--out DIR]

About 5 minutes on 2 free CPU cores (25 on a shared, loaded one) (the demo model's first conversion adds ~20 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def tunedesk(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "engine.cli", *args]
    print("$", " ".join(cmd[1:]), flush=True)
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--val-share", default="0.2")
    ap.add_argument("--lr", default="2e-4")
    ap.add_argument("--out", type=Path, default=None, help="folder for the data and the run (default: a temporary one)")
    a = ap.parse_args()
    from sentiment import write_parquet

    out = a.out or Path(tempfile.mkdtemp(prefix="tunedesk-labeled-"))
    data = write_parquet(out / "reviews.parquet", n=a.rows)
    started = time.monotonic()
    r = tunedesk("train", str(data), "--max-steps", str(a.steps), "--lr", a.lr, "--val-share", a.val_share,
                 "--eval-every", str(a.steps), "--out", str(out), "--name", "sentiment", "--device", "cpu")
    if r.returncode:
        return r.returncode
    trained = time.monotonic() - started
    r = tunedesk("compare", str(out / "sentiment"), "--accuracy", "--json", "--device", "cpu")
    if r.returncode:
        return r.returncode
    result = json.loads(r.stdout)
    before, after = result["base_accuracy"], result["tuned_accuracy"]
    print(f"\n{a.rows} rows, {a.steps} steps on the CPU in {trained:.0f} s; labels {', '.join(result['labels'])}")
    print(f"Validation accuracy ({result['rows']} rows, exact label match): {before:.0%} before -> {after:.0%} after")
    for row in result["examples"][:3]:
        print(f"  row {row['row']}: label {row['label']!r}, base {row['base']!r}, tuned {row['tuned']!r}")
    print("PASS: after > before" if after > before else "FAIL: training did not raise the accuracy")
    return 0 if after > before else 1


if __name__ == "__main__":
    sys.exit(main())
