"""Is the plan the user gets the plan the run keeps? (GPU machine, ../shared/GPU.md)

The acceptance harness of the automatic plan. It runs the product itself,
`python3 -m engine.cli train DATA --model FOLDER` (= `tunedesk train`) with no --seq-len,
--batch or --quant, on random-weight models under simulated cards, many runs at once on
one big GPU, and checks that each run plans, calibrates, trains and finishes inside the
card, on every row of its data, at the plan it was shown.

    python3 -m bench.fit_check --tokenizer .gpu/tok --out bench/results/fit_check/fit_check.json \\
        [--cases presets|archs|all] [--archs a,b] [--cards 6,8,12,16] [--parallel 8] \\
        [--workdir /tmp/fit] [--only NAME_OR_GLOB ...] [--keep] [--time-limit S] [--skip-done OLD.json]
    python3 -m bench.fit_check --dry --tokenizer .gpu/tok --out /tmp/fc.json   # CPU, tiny models
    python3 -m bench.fit_check --report A.json B.json --out merged.json        # merge, re-check; no GPU

Cases
- presets (resources/presets, built by engine.models.presets.build_random_model):
  qwen2.5-7b_8gb_5k-6.3k       Qwen2.5-7B, 8 GB card (7.0 GiB cap), 40 rows of 5,000-6,300 tokens
  llama-3.1-8b_8gb_6.1k-6.6k   Llama-3.1-8B, 8 GB, 16 rows of 6,144-6,600
  llama-3.1-8b_12gb_24k-25k    Llama-3.1-8B, 12 GB (10.5 GiB), 12 rows of 24,000-25,000
- archs: published config.json files of architectures that are *not* presets, in
  bench/archs/*.json (other families and layouts: qk-norm, fused projections, LayerNorm,
  parallel residual, post-norm, sliding windows, 50k-262k vocabularies; 1-4 B parameters),
  each on 6 / 8 / 12 / 16 GB cards (caps 5.0 / 7.0 / 10.5 / 15.0 GiB: the card less 1 GiB
  for the CUDA context and the desktop) x two datasets: "short" (200 instruction-style rows,
  median ~200, p95 ~800 tokens) and "long" (24 rows of 3,000-9,000 tokens). Run names are
  ARCH_CARDgb_DATA, e.g. qwen3-1.7b_8gb_long.
Data is real English prose (the standard library's docstrings, bench/prose.py) as alpaca
rows; lengths are counted with the demo tokenizer (--tokenizer, 49,152 ids), which every
model folder gets, so a row is as long on every model; the chat template adds ~20 tokens.

Every run: `--max-steps 3 --effective-batch 4 --eval-every 3 --checkpoint-every 1000
--json-events --out WORKDIR/runs --name NAME`, with TUNEDESK_SIMULATE_VRAM_GB=<cap>, its own
TUNEDESK_HOME, PYTHONUNBUFFERED=1 and HF_HUB_OFFLINE=1, in its own process: a cap, a cache
or an out-of-memory state never leaks into another run. Its JSON events (stdout), the end
of its stderr and its run folder's plan.json, summary.json, data_report.json and
metrics.jsonl go into the results.

Checks: "pass", "fail", "unknown" (the engine wrote no such figure: it is being
refactored, so files are read leniently) or "n/a".
- finished           the run ended with status "finished". An architecture run may
                     instead be refused: exit code 2 and a sentence (e.g. "at most 2,048
                     tokens per row fit ..."); refusals are counted apart, neither failures
                     nor out-of-memory, but listed. A preset run must finish.
- estimate_15pct     (archs) the plan's estimate within +-15% of calibration's measured
                     reserved peak (plan.json calibration.measured_reserved: one forward and
                     backward at the plan's largest shape, before step 1). CUDA only.
- peak_under_cap     the steps' reserved peak (max of metrics.jsonl mem_reserved_bytes; the
                     trainer resets the peak after calibration) below the cap.
- no_oom             summary oom_recoveries == 0, no "oom_recovery" event, no
                     out-of-memory error in stderr.
- no_rows_lost       summary rows_lost == 0 (older engines: data_report rows - kept).
                     Truncated rows are not lost; the table shows them after the slash.
- tokens_every_step  every training step in metrics.jsonl has trained_tokens > 0, and all
                     3 steps ran.
- plan_kept          (beyond the brief, the question itself) the plan that ran is the plan
                     first shown: plan.json's micro-batch and length equal its "planned"
                     ones (older engines: calibration's micro-batch equals the plan's), and
                     no recovery changed it.
- plan_length        (presets) plan.json seq_len >= 6,144 / 6,144 / 24,000; for the Qwen
                     case, alternatively all 40 rows kept whole (none lost, none truncated).
Verdict: "pass" (all pass or n/a), "pass?" (some unknown), "refused", "FAIL", or "killed"
/ "build failed" (the time limit, or this harness's model build: not the product).

Scheduling: model folders are built one at a time, each in its own process (on the GPU,
bf16; a folder that has a config.json is reused); the runs of a model start as soon as it
is built, up to --parallel at once, while the GPU's memory holds them (each run counts its
cap + 1.5 GiB, a build its weights + 1.5 GiB) and at least --min-free-ram-gib of RAM is
free; each run gets cpu_count / --parallel CPU threads. The disk is 64 GB and a 7-8B folder
~16 GB: a model folder, a run's adapter and its TUNEDESK_HOME are deleted once done, unless
--keep. The results JSON (and table.md beside it) is rewritten after every run, so a command
cut short keeps what finished. The device stops a command at 600 s: --time-limit S stops
starting runs 60 s before S, stops those still running at S, and writes everything;
--skip-done OLD.json then runs only what OLD.json lacks and copies the rest into --out.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.child import run_folder, save_json

T0 = time.time()  # the command's start: --time-limit counts from here, as the device's limit does
GiB = 1024**3
ROOT = Path(__file__).resolve().parent.parent
ARCHS_DIR = Path(__file__).resolve().parent / "archs"
CARDS = {6: 5.0, 8: 7.0, 12: 10.5, 16: 15.0}  # card GB -> allocator cap GiB (the card minus 1 GiB)
CHILD_OVERHEAD_GIB = 1.5  # per child, outside its cap: CUDA context, cuBLAS/bitsandbytes handles
TRAIN_FLAGS = ["--max-steps", "3", "--effective-batch", "4", "--eval-every", "3", "--checkpoint-every", "1000"]
TOLERANCE = 0.15

# name -> (kind, rows, lo, hi, seed): bench.prose.write_alpaca, or write_short ("short": lengths of
# bench.synthetic.instruction_lengths). The preset files are named by their token ranges.
DATASETS = {
    "short": ("short", 200, 0, 0, 11),
    "long": ("alpaca", 24, 3000, 9000, 12),
    "p5k-6.3k": ("alpaca", 40, 5000, 6300, 13),
    "p6.1k-6.6k": ("alpaca", 16, 6144, 6600, 14),
    "p24k-25k": ("alpaca", 12, 24000, 25000, 15),
    # --dry: tiny, for the CPU
    "dry-short": ("alpaca", 8, 40, 200, 21),
    "dry-long": ("alpaca", 4, 300, 600, 22),
    "dry-preset": ("alpaca", 6, 150, 300, 23),
}
# (preset, card GB, cap GiB, dataset, length the plan must reach, or all rows whole instead)
PRESET_CASES = [
    ("qwen2.5-7b", 8, 7.0, "p5k-6.3k", 6144, True),
    ("llama-3.1-8b", 8, 7.0, "p6.1k-6.6k", 6144, False),
    ("llama-3.1-8b", 12, 10.5, "p24k-25k", 24000, False),
]
DRY_PRESET_CASES = [("smollm2-135m", 0, None, "dry-preset", 150, False)]


# -- models ----------------------------------------------------------------------------------
def arch_names() -> list[str]:
    return sorted(p.stem for p in ARCHS_DIR.glob("*.json"))


def load_arch(name: str) -> dict:
    """The published config of bench/archs/<name>.json, without our notes (keys starting with _)."""
    values = json.loads((ARCHS_DIR / f"{name}.json").read_text())
    return {k: v for k, v in values.items() if not k.startswith("_")}


def shape_values(name: str) -> dict:
    """The config values of a shape in bench/archs/ (families the presets do not cover) or of a preset."""
    from engine.models import presets

    return load_arch(name) if name in arch_names() else presets.load(name)


def shrink(values: dict) -> dict:
    """A tiny model of the same family and layout for --dry on the CPU: 2 layers, 2 heads,
    small widths, the same head_dim (partial-rotary and LongRoPE tables depend on it) and
    the same vocabulary."""
    v = dict(values)
    heads = v.get("num_attention_heads", 2)
    head_dim = v.get("head_dim") or v["hidden_size"] // heads
    kv = v.get("num_key_value_heads")
    v["num_attention_heads"] = 2
    if kv is not None:
        v["num_key_value_heads"] = 2 if kv == heads else 1
    v["hidden_size"] = min(v["hidden_size"], 256) if "head_dim" in v else 2 * head_dim
    v["intermediate_size"] = 2 * v["hidden_size"]
    v["num_hidden_layers"] = 2
    v.pop("layer_types", None)
    if "max_window_layers" in v:
        v["max_window_layers"] = 2
    return v


def _build_child(kind: str, name: str, folder: Path, tokenizer: Path, device: str, dry: bool) -> None:
    """Build one model folder (in its own process: its GPU memory is gone when it exits)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    t0 = time.time()
    from engine.models import presets

    if kind == "preset":
        presets.build_random_model(name, partial, tokenizer_folder=tokenizer, device=device)
    else:
        values = load_arch(name)
        presets.build_random_from_config(shrink(values) if dry else values, partial, tokenizer_folder=tokenizer, device=device)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)  # a folder with config.json is whole: reused by the next command
    print(json.dumps({"built": str(folder), "seconds": round(time.time() - t0, 1)}), flush=True)


def model_params(kind: str, name: str, dry: bool) -> int | None:
    """Parameters of a model (meta device, no memory): for the disk and GPU accounting."""
    try:
        from transformers.utils import logging as hf_logging

        from engine.models import model_info

        hf_logging.set_verbosity_error()  # config advisories are for the children's logs, not this one
        if kind == "preset":
            return model_info.from_preset(name).params_total
        values = load_arch(name)
        return model_info.from_config_dict(shrink(values) if dry else values).params_total
    except Exception:  # noqa: BLE001 - an engine in flux must not stop the harness
        return None


# -- data ------------------------------------------------------------------------------------
def make_dataset(key: str, folder: Path, tok) -> dict:
    """The dataset file (reused when its recipe is unchanged) and its token statistics."""
    from bench import prose

    kind, n, lo, hi, seed = DATASETS[key]
    path = folder / f"{key}.jsonl"
    meta_path = folder / f"{key}.meta.json"
    recipe = {"kind": kind, "rows": n, "lo": lo, "hi": hi, "seed": seed, "python": platform.python_version()}
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("recipe") == recipe:
            return meta
    t0 = time.time()
    lengths = prose.write_short(path, tok, n, seed) if kind == "short" else prose.write_alpaca(path, tok, n, lo, hi, seed)
    meta = {"path": str(path), "recipe": recipe, "lengths": prose.stats(lengths), "seconds": round(time.time() - t0, 1)}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


# -- jobs ------------------------------------------------------------------------------------
@dataclass
class Model:
    key: str  # folder name under workdir/models
    kind: str  # preset | arch
    name: str
    params: int | None = None
    state: str = "pending"  # pending | building | ready | failed | deleted
    error: str = ""
    build_s: float | None = None
    source: str = ""

    @property
    def size_bytes(self) -> int:
        return 2 * (self.params or 8 * 10**9)  # bf16; unknown: an 8B


@dataclass
class Job:
    name: str
    kind: str
    model: str  # Model.key
    card_gb: int
    cap_gib: float | None
    data: str
    need_len: int | None = None
    all_rows_alt: bool = False
    priority: float = 0.0
    state: str = "pending"  # pending | running | done
    proc: subprocess.Popen | None = field(default=None, repr=False)
    started: float = 0.0

    def spec(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "kind", "model", "card_gb", "cap_gib", "data", "need_len", "all_rows_alt")}


def plan_jobs(a) -> tuple[dict[str, Model], list[Job]]:
    models: dict[str, Model] = {}
    jobs: list[Job] = []
    if a.cases in ("presets", "all"):
        for preset, card, cap, data, need, alt in (DRY_PRESET_CASES if a.dry else PRESET_CASES):
            models.setdefault(preset, Model(preset, "preset", preset))
            jobs.append(Job(f"{preset}_{card}gb_{data.removeprefix('p')}" if not a.dry else f"{preset}_cpu_{data}",
                            "preset", preset, card, cap, data, need, alt, priority=1e6 + DATASETS[data][3]))
    if a.cases in ("archs", "all"):
        names = a.archs.split(",") if a.archs else arch_names()
        unknown = [n for n in names if not (ARCHS_DIR / f"{n}.json").is_file()]
        if unknown:
            sys.exit(f"no bench/archs/{unknown[0]}.json; known: {', '.join(arch_names())}")
        cards = [0] if a.dry else [int(c) for c in a.cards.split(",")]
        if not a.dry and any(c not in CARDS for c in cards):
            sys.exit(f"--cards takes {', '.join(map(str, CARDS))}")
        for name in names:
            models.setdefault(name, Model(name, "arch", name))
            datasets = ["dry-short", "dry-long"] if a.dry else ["short", "long"]
            for card in cards:
                for data in datasets:
                    label = f"{card}gb" if card else "cpu"
                    jobs.append(Job(f"{name}_{label}_{data}", "arch", name, card, CARDS.get(card), data,
                                    priority=(1e3 if "long" in data else 0) + card))
    if a.only:
        jobs = [j for j in jobs if any(fnmatch.fnmatch(j.name, p) or p == j.name or p in j.name for p in a.only)]
    jobs = [j for j in jobs if j.name not in getattr(a, "only_skip", ())]
    used = {j.model for j in jobs}
    models = {k: m for k, m in models.items() if k in used}
    for m in models.values():
        m.params = model_params(m.kind, m.name, a.dry)
        if m.kind == "arch":
            m.source = json.loads((ARCHS_DIR / f"{m.name}.json").read_text()).get("_source", "")
        else:
            try:
                from engine.models import presets

                m.source = json.loads((presets.presets_dir() / f"{m.name}.json").read_text()).get("_source", "")
            except Exception:  # noqa: BLE001
                pass
    return models, jobs


# -- reading a finished run ------------------------------------------------------------------
def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    except OSError:
        pass
    return out


def _tail(path: Path, n: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-n:]


PLAN_KEYS = ("fits", "device", "quantization", "micro_batch", "grad_accum", "effective_batch", "gradient_checkpointing",
             "seq_len", "max_seq_len", "lora_r", "optimizer", "embeddings_on_cpu", "lean_memory", "long_rows",
             "budget_bytes", "cap_bytes", "estimate_bytes", "ram_estimate_bytes", "reasons", "suggestion", "user_set",
             "planned", "calibration", "recoveries", "steps_reserved", "length")


def collect(job: Job, rc: int | None, wall: float, logs: Path, runs: Path, killed: str = "") -> dict:
    """Everything a run left: its events, run folder files and stderr, as one record."""
    out_lines = (logs / f"{job.name}.out").read_text(encoding="utf-8", errors="replace").splitlines() \
        if (logs / f"{job.name}.out").is_file() else []
    events, other = [], []
    for line in out_lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            other.append(line)
    run_dir = run_folder(events, runs, job.name)
    plan = _read_json(run_dir / "plan.json") or {}
    metrics = _read_jsonl(run_dir / "metrics.jsonl")
    stderr = _tail(logs / f"{job.name}.err", 4000)
    refusal = None
    if rc == 2:
        m = re.findall(r"tunedesk train: error: (.+)", stderr)
        refusal = m[-1].strip() if m else None
    return {
        "name": job.name,
        "spec": job.spec(),
        "rc": rc,
        "killed": killed or None,
        "wall_s": round(wall, 1),
        "run_dir": str(run_dir),
        "refusal": refusal,
        "plan": {k: plan[k] for k in PLAN_KEYS if k in plan},
        "summary": _read_json(run_dir / "summary.json"),
        "data_report": _slim_report(_read_json(run_dir / "data_report.json")),
        "steps": [m for m in metrics if isinstance(m.get("step"), int)],
        "events": events[-400:],
        "stdout_other": other[-20:],
        "stderr_tail": stderr,
    }


def _slim_report(r: dict | None) -> dict | None:
    if not r:
        return r
    return {k: r[k] for k in ("format", "rows", "kept", "train", "val", "skipped_by_kind", "notes", "trained_tokens",
                              "length", "length_fit") if k in r} | {"skipped": (r.get("skipped") or [])[:10]}


# -- checks ----------------------------------------------------------------------------------
def _g(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def figures(r: dict) -> dict:
    """The numbers the checks and the table use, from whatever the engine wrote."""
    plan, summary, report = r.get("plan") or {}, r.get("summary") or {}, r.get("data_report") or {}
    steps = [s for s in r.get("steps") or [] if s.get("step", 0) >= 1 and ("loss" in s or "trained_tokens" in s)]
    reserved = [s["mem_reserved_bytes"] for s in steps if s.get("mem_reserved_bytes") is not None]
    allocated = [s["mem_bytes"] for s in steps if s.get("mem_bytes") is not None]
    calib = plan.get("calibration") or {}
    oom_events = sum(1 for e in r.get("events") or [] if e.get("event") == "oom_recovery")
    rows_lost = summary.get("rows_lost")
    if rows_lost is None and report.get("rows") is not None and report.get("kept") is not None:
        rows_lost = report["rows"] - report["kept"]
    truncated = summary.get("rows_truncated")
    if truncated is None:
        fit = plan.get("length") or report.get("length_fit") or {}
        if isinstance(fit, dict) and ("context_cut" in fit or "answer_cut" in fit):
            truncated = int(fit.get("context_cut") or 0) + int(fit.get("answer_cut") or 0)
    planned = plan.get("planned") or {}
    # The plan first shown, and the one the run ended with. Engines that keep the first plan
    # in plan.json "planned" write the final one at the top; older ones wrote the first plan
    # at the top and calibration's (possibly smaller) micro-batch under "calibration".
    if planned:
        first_mb, first_len = planned.get("micro_batch"), planned.get("seq_len") or planned.get("max_seq_len")
        final_mb, final_len = plan.get("micro_batch"), plan.get("seq_len") or plan.get("max_seq_len")
    else:
        first_mb, first_len = plan.get("micro_batch"), plan.get("seq_len") or plan.get("max_seq_len")
        final_mb = calib.get("micro_batch") or first_mb
        final_len = first_len if calib.get("max_len") is None else min(first_len or 1 << 30, calib["max_len"])
    status = summary.get("status") or ("refused" if r.get("refusal") else "killed" if r.get("killed") else
                                       "build failed" if r.get("build_error") else "crashed")
    return {
        "status": status,
        "plan_len": final_len or summary.get("seq_len"),
        "planned_len": first_len,
        "micro_batch": final_mb,
        "planned_micro_batch": first_mb,
        "grad_accum": plan.get("grad_accum") if final_mb == plan.get("micro_batch") else None,
        "quant": plan.get("quantization"),
        "lean": plan.get("lean_memory"),
        "embeddings_on_cpu": plan.get("embeddings_on_cpu"),
        "estimate": calib.get("estimate") or plan.get("estimate_bytes"),  # calibration's: of the shape it measured
        "calibration": calib.get("measured_reserved"),
        "peak_reserved": max(reserved) if reserved else None,
        "peak_allocated": max(allocated) if allocated else None,
        "oom": summary.get("oom_recoveries"),
        "oom_events": oom_events,
        "oom_crash": bool(re.search(r"OutOfMemoryError|CUDA out of memory", r.get("stderr_tail") or "")),
        "recoveries": [x.get("cause") for x in plan.get("recoveries") or [] if isinstance(x, dict)],
        "rows": summary.get("rows_total") or report.get("rows"),
        "kept": report.get("kept"),
        "rows_lost": rows_lost,
        "rows_truncated": truncated,
        "steps": len(steps),
        "trained_tokens": [s.get("trained_tokens") for s in steps],
    }


def evaluate(r: dict) -> dict:
    """The checks of one run record (re-run by --report, so they can change without a GPU)."""
    spec, f = r["spec"], figures(r)
    cap = spec.get("cap_gib")
    checks: dict[str, str] = {}
    refused = f["status"] == "refused" and spec["kind"] == "arch"
    checks["finished"] = "pass" if f["status"] == "finished" else "n/a" if refused else "fail"
    ran = f["status"] == "finished"

    def check(name: str, ok: bool | None, applies: bool = True) -> None:
        checks[name] = "n/a" if refused or not applies else "unknown" if ok is None else "pass" if ok else "fail"

    est, cal = f["estimate"], f["calibration"]
    check("estimate_15pct", None if not (est and cal) else abs(est - cal) <= TOLERANCE * cal,
          applies=cap is not None and spec["kind"] == "arch")  # the brief's preset checks leave it out; the table shows both
    check("peak_under_cap", None if f["peak_reserved"] is None else f["peak_reserved"] < cap * GiB, applies=cap is not None)
    if f["oom_events"] or (f["oom"] or 0) > 0 or f["oom_crash"]:
        oom = False
    else:
        oom = None if f["oom"] is None and not ran else True
    check("no_oom", oom)
    check("no_rows_lost", None if f["rows_lost"] is None else f["rows_lost"] == 0)
    tokens = f["trained_tokens"]
    max_steps = int(TRAIN_FLAGS[TRAIN_FLAGS.index("--max-steps") + 1]) if not spec.get("dry") else None
    if not tokens:
        ok = None if not ran else False
    elif any(t is None for t in tokens):
        ok = None if all((t or 1) > 0 for t in tokens) else False
    else:
        ok = all(t > 0 for t in tokens) and (max_steps is None or len(tokens) >= max_steps)
    check("tokens_every_step", ok)
    kept = None
    if f["micro_batch"] is not None and f["planned_micro_batch"] is not None:
        kept = (f["micro_batch"] == f["planned_micro_batch"] and f["planned_len"] == f["plan_len"]
                and not f["recoveries"] and not f["oom_events"])
    check("plan_kept", kept, applies=cap is not None)
    if spec["kind"] == "preset":
        need = spec.get("need_len")
        ok = None if f["plan_len"] is None else f["plan_len"] >= need
        if not ok and spec.get("all_rows_alt") and f["rows_lost"] == 0 and f["rows_truncated"] == 0:
            ok = True  # every row whole: the case's data needs no more than the plan's length
        check("plan_length", ok)
    if refused:
        verdict = "refused"
    elif f["status"] in ("killed", "build failed"):
        verdict = f["status"]  # not the product's doing: the time limit, or the harness's model build
    elif "fail" in checks.values():
        verdict = "FAIL"
    elif "unknown" in checks.values():
        verdict = "pass?"
    else:
        verdict = "pass"
    return {"checks": checks, "verdict": verdict, "figures": f}


# -- table -----------------------------------------------------------------------------------
SHORT = {"finished": "fin", "estimate_15pct": "est", "peak_under_cap": "cap", "no_oom": "oom", "no_rows_lost": "rows",
         "tokens_every_step": "tok", "plan_kept": "kept", "plan_length": "len"}


def _gib(x) -> str:
    return f"{x / GiB:.2f}" if isinstance(x, (int, float)) else "–"


def table(runs: list[dict]) -> str:
    head = "| run | card | plan len | micro-batch | quant | est GiB | calib GiB | peak res GiB | OOMs | rows lost / cut | status | checks |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in runs:
        e = r.get("eval") or evaluate(r)
        f, spec = e["figures"], r["spec"]
        card = f"{spec['card_gb']} GB ({spec['cap_gib']:g})" if spec.get("cap_gib") else "CPU"
        mb = "–" if f["micro_batch"] is None else f"{f['micro_batch']}" + (f"×{f['grad_accum']}" if f["grad_accum"] else "")
        if f["planned_micro_batch"] and f["micro_batch"] and f["planned_micro_batch"] != f["micro_batch"]:
            mb = f"{f['planned_micro_batch']}→{mb}"
        quant = (f["quant"] or "–") + (" lean" if f["lean"] else "") + (" embRAM" if f["embeddings_on_cpu"] else "")
        plan_len = "–" if f["plan_len"] is None else f"{f['plan_len']:,}"
        if f["planned_len"] and f["plan_len"] and f["planned_len"] != f["plan_len"]:
            plan_len = f"{f['planned_len']:,}→{plan_len}"
        ooms = "–" if f["oom"] is None else str(f["oom"])
        lost = f"{'–' if f['rows_lost'] is None else f['rows_lost']} / {'–' if f['rows_truncated'] is None else f['rows_truncated']}"
        failed = [SHORT.get(k, k) for k, v in e["checks"].items() if v == "fail"]
        unknown = [SHORT.get(k, k) for k, v in e["checks"].items() if v == "unknown"]
        if e["verdict"] == "refused":
            checks = "refused: " + (r.get("refusal") or "")[:90]
        elif e["verdict"] == "build failed":
            last = (r.get("build_error") or "").strip().splitlines()
            checks = "build failed: " + (last[-1] if last else "")[:90]
        elif e["verdict"] == "killed":
            checks = r.get("killed") or "killed"
        elif f["status"] != "finished":  # the reason, not a list of unknowns
            lines_ = [x for x in (r.get("stderr_tail") or "").splitlines() if x.strip()]
            why = r.get("refusal") or (r.get("summary") or {}).get("error") or (lines_[-1] if lines_ else "")
            checks = "FAIL " + ",".join(failed) + ": " + why.strip()[:120]
        else:
            checks = ("ok" if not failed else "FAIL " + ",".join(failed)) + (f" (? {','.join(unknown)})" if unknown else "")
        lines.append(f"| {r['name']} | {card} | {plan_len} | {mb} | {quant} | {_gib(f['estimate'])} | {_gib(f['calibration'])} | "
                     f"{_gib(f['peak_reserved'])} | {ooms} | {lost} | {f['status']} | {checks} |")
    return "\n".join(lines)


def summarize(runs: list[dict]) -> dict:
    verdicts: dict[str, list[str]] = {}
    for r in runs:
        verdicts.setdefault(r["eval"]["verdict"], []).append(r["name"])
    return {"runs": len(runs), **{k: len(v) for k, v in sorted(verdicts.items())},
            "failed": verdicts.get("FAIL", []), "refused": verdicts.get("refused", []), "unknown": verdicts.get("pass?", [])}


def merge(runs: dict, more: dict) -> None:
    """Later records win, except that a run stopped or never started never replaces one that ran."""
    for name, r in more.items():
        old = runs.get(name)
        if old is not None and figures(r)["status"] == "killed" and figures(old)["status"] != "killed":
            continue
        runs[name] = r


def write_outputs(result: dict, out: Path, table_path: Path) -> None:
    runs = sorted(result["runs"].values(), key=lambda r: r["name"])
    for r in runs:
        r["eval"] = evaluate(r)
    result["summary"] = summarize(runs)
    save_json(out, result)
    text = table(runs)
    cmd = result.get("command", "")
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(f"`{cmd}`\n\n{text}\n\n{json.dumps(result['summary'])}\n")


# -- environment -----------------------------------------------------------------------------
def _environment() -> dict:
    env: dict = {"python": platform.python_version(), "host": platform.node()}
    from importlib import metadata

    for dist in ("torch", "transformers", "peft", "bitsandbytes", "accelerate"):
        try:  # from the metadata: importing bitsandbytes here could open a CUDA context
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = None
    try:
        env["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["gpu"] = None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "engine"], cwd=ROOT, capture_output=True, text=True,
                               timeout=20).stdout.strip()
        env["commit"] = head + (" + uncommitted engine changes" if dirty else "") if head else None
    except (OSError, subprocess.SubprocessError):
        env["commit"] = None
    return env


def _gpu_total_gib() -> float | None:
    """Without touching CUDA in this process (its context would take memory from the children)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20).stdout.split()
        return float(out[0]) / 1024 if out else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _ram_available_gib() -> float:
    try:
        import psutil

        return psutil.virtual_memory().available / GiB
    except Exception:  # noqa: BLE001
        return 1e9


# -- the scheduler ---------------------------------------------------------------------------
class Harness:
    def __init__(self, a, models: dict[str, Model], jobs: list[Job], result: dict) -> None:
        self.a, self.models, self.jobs, self.result = a, models, jobs, result
        self.work = a.workdir
        self.logs, self.runs, self.homes, self.model_dir = (self.work / x for x in ("logs", "runs", "homes", "models"))
        for d in (self.logs, self.runs, self.homes, self.model_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.t0 = T0
        self.idle_since: float | None = None
        self.builder: tuple[Model, subprocess.Popen, float] | None = None
        total = _gpu_total_gib()
        self.gpu_budget = a.gpu_gib or ((total - 4.0) if total else 130.0)
        # CPU threads per run: the cores shared by the runs that can be at once (16 / 8 = 2 on the H200 machine).
        self.threads = str(max(1, (os.cpu_count() or 8) // max(1, min(a.parallel, len(jobs)))))
        self.build_order = self._build_order()

    def log(self, text: str) -> None:
        print(f"[{time.time() - self.t0:6.0f}s] {text}", flush=True)

    def folder(self, m: Model) -> Path:
        return self.model_dir / m.key

    def _build_order(self) -> list[Model]:
        """The smallest model first (runs start within seconds), then by the work waiting on
        each: the presets' long runs before the architectures."""
        ms = sorted(self.models.values(), key=lambda m: m.size_bytes)
        if not ms:
            return []
        work = {k: sum(j.priority for j in self.jobs if j.model == k) for k in self.models}
        return [ms[0]] + sorted(ms[1:], key=lambda m: -work[m.key])

    # builds
    def _gpu_in_use(self) -> float:
        used = sum((j.cap_gib or 0) + CHILD_OVERHEAD_GIB for j in self.jobs if j.state == "running")
        if self.builder:
            used += self.builder[0].size_bytes / GiB + CHILD_OVERHEAD_GIB
        return used

    def _disk_free(self) -> int:
        return shutil.disk_usage(self.work).free

    def _start_build(self) -> None:
        pending = [m for m in self.build_order if m.state == "pending"]
        if self.builder or not pending:
            return
        m = pending[0]
        if (self.folder(m) / "config.json").is_file():
            m.state = "ready"
            self.log(f"model {m.key}: reusing {self.folder(m)}")
            return
        busy = any(j.state == "running" for j in self.jobs)
        need = m.size_bytes * 1.05 + 2 * GiB
        if self._disk_free() < need:
            # Wait while a model folder will be deleted: one whose runs are not all done.
            if not self.a.keep and any(j.state != "done" and self.models[j.model].state == "ready" for j in self.jobs):
                return
            m.state, m.error = "failed", f"not enough disk: {self._disk_free() / GiB:.1f} GiB free, {need / GiB:.1f} needed"
            self.log(f"model {m.key}: {m.error}")
            return
        if not self.a.dry and self._gpu_in_use() + m.size_bytes / GiB + CHILD_OVERHEAD_GIB > self.gpu_budget:
            if not busy:
                m.state, m.error = "failed", f"its build needs more GPU memory than --gpu-gib {self.gpu_budget:.0f}"
                self.log(f"model {m.key}: {m.error}")
            return
        cmd = [sys.executable, "-m", "bench.fit_check", "--build-child", m.kind, m.name, str(self.folder(m)),
               "--tokenizer", str(self.a.tokenizer)] + (["--dry"] if self.a.dry else [])
        log = open(self.logs / f"build-{m.key}.log", "w")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=self._env(None, None))
        log.close()
        m.state = "building"
        self.builder = (m, proc, time.time())
        self.log(f"model {m.key}: building ({(m.params or 0) / 1e9:.2f} B parameters)")

    def _poll_build(self) -> None:
        if not self.builder:
            return
        m, proc, t = self.builder
        if proc.poll() is None:
            return
        self.builder = None
        m.build_s = round(time.time() - t, 1)
        if proc.returncode == 0 and (self.folder(m) / "config.json").is_file():
            m.state = "ready"
            self.log(f"model {m.key}: built in {m.build_s:.0f} s")
        else:
            m.state, m.error = "failed", _tail(self.logs / f"build-{m.key}.log", 2000)
            self.log(f"model {m.key}: build FAILED (rc {proc.returncode}): {m.error[-300:]}")
        self.result["models"][m.key] = self._model_record(m)

    def _model_record(self, m: Model) -> dict:
        return {"kind": m.kind, "name": m.name, "source": m.source, "params": m.params, "state": m.state,
                "build_s": m.build_s, "error": m.error[-2000:] or None}

    # runs
    def _env(self, job: Job | None, home: Path | None) -> dict:
        env = os.environ.copy()
        env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=self.threads)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.pop("TUNEDESK_SIMULATE_VRAM_GB", None)
        if job is not None and job.cap_gib:
            env["TUNEDESK_SIMULATE_VRAM_GB"] = f"{job.cap_gib:g}"
        if home is not None:
            env["TUNEDESK_HOME"] = str(home)
        return env

    def _launch(self, job: Job) -> None:
        home = self.homes / job.name
        for d in (home, self.runs / job.name):
            shutil.rmtree(d, ignore_errors=True)
        home.mkdir(parents=True)
        cmd = [sys.executable, "-m", "engine.cli", "train", str(self.a.data_paths[job.data]),
               "--model", str(self.folder(self.models[job.model])), *TRAIN_FLAGS,
               "--json-events", "--out", str(self.runs), "--name", job.name]
        if self.a.dry:
            cmd[cmd.index("--max-steps") + 1] = "1"
            cmd[cmd.index("--effective-batch") + 1] = "2"
            cmd[cmd.index("--eval-every") + 1] = "1"
            cmd += ["--device", "cpu"]
        with open(self.logs / f"{job.name}.out", "w") as out, open(self.logs / f"{job.name}.err", "w") as err:
            job.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env=self._env(job, home))
        job.state, job.started = "running", time.time()
        self.result["runs"].pop(job.name, None)
        self.log(f"start {job.name} (cap {job.cap_gib or '-'} GiB, {sum(j.state == 'running' for j in self.jobs)} running)")

    def _finish(self, job: Job, rc: int | None, killed: str = "") -> None:
        record = collect(job, rc, time.time() - job.started, self.logs, self.runs, killed)
        record["spec"]["dry"] = bool(self.a.dry)
        record["command"] = " ".join(job.proc.args) if job.proc else None
        record["eval"] = evaluate(record)
        self.result["runs"][job.name] = record
        job.state, job.proc = "done", None
        f = record["eval"]["figures"]
        self.log(f"done  {job.name}: rc {rc}, {f['status']}, {record['eval']['verdict']} in {record['wall_s']:.0f} s"
                 f" (plan {f['plan_len']} x mb {f['micro_batch']} {f['quant']}, est {_gib(f['estimate'])}, "
                 f"calib {_gib(f['calibration'])}, peak {_gib(f['peak_reserved'])} GiB)"
                 + (f" refused: {record['refusal']}" if record.get("refusal") else ""))
        if not self.a.keep:
            shutil.rmtree(self.homes / job.name, ignore_errors=True)
            run_dir = Path(record["run_dir"])
            for sub in ("adapter", "checkpoints"):
                shutil.rmtree(run_dir / sub, ignore_errors=True)
        self._maybe_delete(self.models[job.model])
        self.save()

    def _maybe_delete(self, m: Model) -> None:
        if self.a.keep or m.state != "ready" or any(j.model == m.key and j.state != "done" for j in self.jobs):
            return
        shutil.rmtree(self.folder(m), ignore_errors=True)
        m.state = "deleted"
        self.result["models"][m.key] = self._model_record(m)
        self.log(f"model {m.key}: runs done, folder deleted")

    def _fail_unbuildable(self) -> None:
        for j in self.jobs:
            m = self.models[j.model]
            if j.state == "pending" and m.state == "failed":
                j.state = "done"
                self.result["runs"][j.name] = {"name": j.name, "spec": {**j.spec(), "dry": bool(self.a.dry)}, "rc": None,
                                               "build_error": m.error[-1500:], "steps": [], "events": []}
                self.result["runs"][j.name]["eval"] = evaluate(self.result["runs"][j.name])
                self.save()

    def save(self) -> None:
        self.result["elapsed_s"] = round(time.time() - self.t0, 1)
        write_outputs(self.result, self.a.out, self.a.table)

    def _can_launch(self, job: Job) -> bool:
        if self.models[job.model].state != "ready":
            return False
        if sum(j.state == "running" for j in self.jobs) >= self.a.parallel:
            return False
        if not self.a.dry and self._gpu_in_use() + (job.cap_gib or 0) + CHILD_OVERHEAD_GIB > self.gpu_budget:
            return False
        return _ram_available_gib() >= self.a.min_free_ram_gib

    def loop(self) -> None:
        limit = self.a.time_limit
        while any(j.state != "done" for j in self.jobs):
            elapsed = time.time() - self.t0
            for j in self.jobs:
                if j.state == "running" and j.proc.poll() is not None:
                    self._finish(j, j.proc.returncode)
            self._poll_build()
            self._fail_unbuildable()
            idle = not self.builder and not any(j.state == "running" for j in self.jobs)
            if limit and (elapsed > limit or (idle and elapsed > limit - 60)):
                self._stop_all(f"stopped at the time limit ({limit:g} s)")
                break
            if not limit or elapsed < limit - 60:  # a run started in the last minute could not finish
                self._start_build()
                for j in sorted(self.jobs, key=lambda j: -j.priority):
                    if j.state == "pending" and self._can_launch(j):
                        self._launch(j)
            # Nothing running or building, yet runs wait (RAM held by other programs, a cap
            # over --gpu-gib): say so rather than hang.
            if self.builder or any(j.state == "running" for j in self.jobs):
                self.idle_since = None
            elif self.idle_since is None:
                self.idle_since = time.time()
            elif time.time() - self.idle_since > 120:
                self._stop_all(f"stalled: nothing could start for 120 s (RAM available {_ram_available_gib():.0f} GiB)")
                break
            time.sleep(0.5)
        self.save()

    def _stop_all(self, why: str) -> None:
        for j in self.jobs:
            if j.state == "running":
                j.proc.terminate()
                try:
                    j.proc.wait(20)
                except subprocess.TimeoutExpired:
                    j.proc.kill()
                    j.proc.wait()
                self._finish(j, j.proc.returncode, killed=why)
            elif j.state == "pending":
                j.state = "done"
                self.result["runs"][j.name] = {"name": j.name, "spec": {**j.spec(), "dry": bool(self.a.dry)}, "rc": None,
                                               "killed": f"not started: {why}", "steps": [], "events": []}
        if self.builder:
            self.builder[1].kill()
            self.builder[1].wait()
            self.builder = None
        self.log(why)


# -- main ------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", type=Path, default=Path(".gpu/tok"), help="the demo model's tokenizer files")
    ap.add_argument("--out", type=Path, default=Path("bench/results/fit_check/fit_check.json"), help="the results JSON")
    ap.add_argument("--table", type=Path, default=None, help="the markdown table (default: table.md beside --out)")
    ap.add_argument("--cases", choices=["presets", "archs", "all"], default="all")
    ap.add_argument("--archs", default="", help=f"comma-separated, of bench/archs (default all: {','.join(arch_names())})")
    ap.add_argument("--cards", default="6,8,12,16", help="card sizes in GB for the archs (6, 8, 12, 16)")
    ap.add_argument("--parallel", type=int, default=8, help="training runs at once")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fit"), help="models, data, run folders, logs")
    ap.add_argument("--only", nargs="*", default=None, help="run names (or globs, or substrings) to run")
    ap.add_argument("--keep", action="store_true", help="keep model folders, adapters and homes")
    ap.add_argument("--time-limit", type=float, default=None, help="stop everything after S seconds and write the results")
    ap.add_argument("--gpu-gib", type=float, default=None, help="GPU memory the runs may share (default: the card's less 4 GiB)")
    ap.add_argument("--min-free-ram-gib", type=float, default=8.0, help="start no run while less RAM is available")
    ap.add_argument("--dry", action="store_true", help="CPU, tiny models (2-layer versions of the archs, SmolLM2-135M "
                                                       "preset), tiny data, 1 step: tests this harness, not the product")
    ap.add_argument("--skip-done", nargs="*", default=None, metavar="JSON",
                    help="results of an earlier command: its runs that ran are copied into --out, not run again")
    ap.add_argument("--report", nargs="*", default=None, metavar="JSON",
                    help="merge these results files (later ones win per run), re-check, write --out and the table")
    ap.add_argument("--build-child", nargs=3, metavar=("KIND", "NAME", "FOLDER"), help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    a.table = a.table or a.out.parent / "table.md"
    if a.build_child:
        kind, name, folder = a.build_child
        _build_child(kind, name, Path(folder), a.tokenizer, "cpu" if a.dry else "cuda", a.dry)
        return 0
    command = "python3 -m bench.fit_check " + " ".join(sys.argv[1:] if argv is None else argv)
    if a.report is not None:
        result: dict = {"command": command, "merged_from": a.report, "runs": {}, "models": {}, "datasets": {}}
        for path in a.report:
            part = json.loads(Path(path).read_text())
            merge(result["runs"], part.get("runs") or {})
            for key in ("models", "datasets"):
                result[key].update(part.get(key) or {})
            result.setdefault("environment", part.get("environment"))
        write_outputs(result, a.out, a.table)
        print(table(sorted(result["runs"].values(), key=lambda r: r["name"])))
        print(json.dumps(result["summary"]))
        return 0

    a.workdir = a.workdir.resolve()
    a.tokenizer = a.tokenizer.resolve()
    a.out = a.out.resolve()
    a.table = a.table.resolve()
    if a.dry:
        a.workdir = a.workdir.with_name(a.workdir.name + "-dry")
        a.parallel = min(a.parallel, 2)
    earlier: dict = {}
    for path in a.skip_done or []:  # runs of an earlier, cut-short command: kept, not run again
        merge(earlier, json.loads(Path(path).read_text()).get("runs") or {})
    done = {n for n, r in earlier.items() if figures(r)["status"] not in ("killed", "build failed")}
    a.only_skip = done
    models, jobs = plan_jobs(a)
    result = {"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "dry": a.dry,
              "environment": _environment(), "train_flags": TRAIN_FLAGS, "cards": CARDS,
              "datasets": {}, "models": {}, "runs": {n: earlier[n] for n in sorted(done)}}
    if not jobs:
        print("no runs left to run" if done else "no runs selected", file=sys.stderr)
        if done:
            write_outputs(result, a.out, a.table)
        return 0 if done else 1
    h = Harness(a, models, jobs, result)
    for m in models.values():
        result["models"][m.key] = h._model_record(m)
    h._start_build()  # the GPU builds the first model while the CPU writes the data
    # The data, on the CPU, in this process: one tokenizer for every file.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(a.tokenizer))
    data_dir = a.workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    a.data_paths = {}
    for key in sorted({j.data for j in jobs}):
        meta = make_dataset(key, data_dir, tok)
        a.data_paths[key] = Path(meta["path"])
        result["datasets"][key] = meta
        h.log(f"data {key}: {meta['lengths']}")
    h.log(f"{len(jobs)} runs of {len(models)} models, {a.parallel} at once, GPU budget "
          f"{'-' if a.dry else f'{h.gpu_budget:.0f} GiB'}, {h.threads} CPU threads each; results -> {a.out}")
    try:
        h.loop()
    except KeyboardInterrupt:
        h._stop_all("interrupted")
        h.save()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    h.save()
    runs = sorted(result["runs"].values(), key=lambda r: r["name"])
    print()
    print(table(runs))
    print(json.dumps(result["summary"]))
    print(f"results: {a.out}  table: {a.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
