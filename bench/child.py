"""Each GPU measurement runs in a fresh process: its allocator cap, caches and any
out-of-memory state never leak into the next one. The child prints one `RESULT {json}`."""

from __future__ import annotations

import json
import subprocess
import sys

GiB = 1024**3
CAPS = {8: 7.0, 12: 10.5, 24: 23.0}  # card GB -> allocator cap GiB: the card minus 1 GiB (CUDA context, desktop)


def run_child(module: str, *args) -> dict:
    """`python -m module --child args…`; its RESULT object, or the end of its stderr."""
    out = subprocess.run([sys.executable, "-m", module, "--child", *map(str, args)], capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    return json.loads(line[7:]) if line else {"ok": False, "error": out.stderr[-800:]}


def save_json(path, result: dict) -> None:
    """Write a results file (its folder too); scripts call it after every row, so a run
    cut short still leaves what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def report(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def cap_allocator(cap_gib: float) -> None:
    """Simulate a smaller card: the caching allocator raises out-of-memory past cap_gib."""
    import torch

    torch.cuda.set_per_process_memory_fraction(cap_gib * GiB / torch.cuda.get_device_properties(0).total_memory)


def random_model(name: str, workdir, tokenizer):
    """The random-weight model folder of a preset, or of a shape in bench/archs/ (families
    the presets do not cover), under workdir, built on the GPU if missing."""
    from pathlib import Path

    from bench.fit_check import shape_values
    from engine.models import presets

    folder = Path(workdir) / name
    if not (folder / "config.json").is_file():
        presets.build_random_from_config(shape_values(name), folder, tokenizer_folder=tokenizer, device="cuda")
    return folder


def bench_parser(presets: str, *, cards: str | None = None, workdir: str = "/tmp/planner_check", preset_flag: str = "--presets"):
    """The options every GPU benchmark's main process takes; each script adds its own."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", type=Path, default=Path(".gpu/tok"), help="the demo model's tokenizer files")
    ap.add_argument("--out", type=Path, required=True, help="the results JSON")
    ap.add_argument(preset_flag, default=presets)
    if cards:
        ap.add_argument("--cards", default=cards, help="simulated card sizes in GB (8, 12, 24)")
    ap.add_argument("--workdir", type=Path, default=Path(workdir), help="where random-weight models are built")
    return ap


def child_args(**types):
    """The child's own arguments, --name=value with the given types (`cpu_embed` is --cpu-embed)."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    for name, kind in types.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind)
    return p.parse_args()


def json_events(stdout: str) -> list[dict]:
    """The events a `tunedesk train --json-events` run printed (one JSON object a line)."""
    import json

    return [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]


def run_folder(events: list[dict], out_dir, name: str):
    """The run folder a `tunedesk train --json-events` run wrote, from its "started" event.
    `out_dir / name` only where the run never started: a name already taken gets a suffix
    (engine/runs.py), and that folder belongs to an earlier run in the same --workdir."""
    from pathlib import Path

    started = next((e for e in events if e.get("event") == "started" and e.get("run_dir")), None)
    return Path(started["run_dir"]) if started else Path(out_dir) / name
