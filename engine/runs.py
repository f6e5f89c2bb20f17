"""A run is a folder; this module knows its layout.

    <out>/<run-name>/
        config.json        the whole RunConfig tree (plus resolved model folder)
        data_report.json   what the data step kept and skipped, and why
        plan.json          the memory plan: choices, reasons, estimate by term, calibration
        metrics.jsonl      one JSON object per logged step / evaluation
        checkpoints/       step-000050/ ... resumable states, last K kept
        adapter/           the run's LoRA adapter in PEFT format: the best evaluation's weights
        best/              while training: the best evaluation's adapter so far (written on each new best)
        last/              the last step's adapter, when the best came earlier (`--adapter last`)
        probe.json         the forgetting meter's prompts' scores before and after (engine/eval/probe.py)
        replay.jsonl       the base model's own answers mixed into training (engine/training/replay.py)
        summary.json       final losses, steps, duration, tokens/s, status
        running.json       while training: the process id (left behind by a crash)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from . import paths
from .atomic import append_jsonl, atomic_dir, read_jsonl, write_json, write_text
from .config import RunConfig
from .errors import TuneDeskError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
DATA_REPORT = "data_report.json"
PLAN = "plan.json"
ADAPTER = "adapter"
BEST = "best"
LAST = "last"
ADAPTERS = ("best", "last")  # which adapter chat, compare and export use (the best unless told otherwise)
CHECKPOINTS = "checkpoints"
RUNNING = "running.json"
STOP = "STOP"  # a stop request from outside the training processes (every rank reads it)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:40] or "run"


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- creation -----------------------------------------------------------------
    @classmethod
    def create(cls, cfg: RunConfig, *, model_name: str) -> "RunDir":
        parent = Path(cfg.out_dir).expanduser() if cfg.out_dir else paths.default_runs_dir()
        name = cfg.name or f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(model_name)}-{_slug(Path(cfg.data.path).stem)}"
        parent.mkdir(parents=True, exist_ok=True)
        path = parent / name
        n = 2
        while path.exists():
            path = parent / f"{name}-{n}"
            n += 1
        path.mkdir()
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        run = cls(path)
        if not (run.path / CONFIG).is_file():
            raise TuneDeskError(f"{path}: not a TuneDesk run folder (no {CONFIG})")
        return run

    # -- files --------------------------------------------------------------------
    @property
    def adapter_dir(self) -> Path:
        return self.path / ADAPTER

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def best_dir(self) -> Path:
        return self.path / BEST

    @property
    def last_dir(self) -> Path:
        return self.path / LAST

    def write_adapter(self, model, base_model: str, step: int, folder: str = ADAPTER, state_dict: dict | None = None,
                      **note: Any) -> Path:
        """An adapter (peft's files) and what it was trained from, written whole or not at
        all: the run's (adapter/), the best so far (best/) or the last step's (last/).
        `state_dict`: the weights gathered from a sharded model (None: the model's own)."""
        target = self.path / folder
        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp, **({} if state_dict is None else {"state_dict": state_dict}))
            write_json(tmp / "tunedesk.json", {"base_model": base_model, "step": step, **note})
        return target

    def adapter_for(self, which: str = "best") -> Path:
        """The adapter folder to use: 'best' is the run's adapter (the best evaluation's
        weights), 'last' the last step's (the same folder when the best was the last)."""
        if which not in ADAPTERS:
            raise TuneDeskError(f"--adapter must be one of {', '.join(ADAPTERS)}, not '{which}'")
        if which == "last" and (self.last_dir / "adapter_config.json").is_file():
            return self.last_dir
        return self.adapter_dir

    def adapter_step(self, which: str = "best") -> int | None:
        """The step an adapter was saved at (tunedesk.json), None when unknown."""
        try:
            return int(json.loads((self.adapter_for(which) / "tunedesk.json").read_text(encoding="utf-8"))["step"])
        except (OSError, ValueError, KeyError):
            return None

    def has_adapter(self) -> bool:
        """A saved adapter to chat with, compare or export."""
        return (self.adapter_dir / "adapter_config.json").is_file()

    def delete(self) -> None:
        """The whole run folder, gone (the window asks first)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def write_config(self, cfg: RunConfig, **extra: Any) -> None:
        write_json(self.path / CONFIG, {**cfg.to_dict(), **extra})

    def read_config(self) -> tuple[RunConfig, dict[str, Any]]:
        raw = json.loads((self.path / CONFIG).read_text(encoding="utf-8"))
        extra = {k: raw.pop(k) for k in list(raw) if k.startswith("resolved_")}
        return RunConfig.from_dict(raw), extra

    def request_text(self) -> str:
        """config.json as written: the request, for people to read (null: left to the planner)."""
        return (self.path / CONFIG).read_text(encoding="utf-8")

    def log_metrics(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path / METRICS, record)

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl atomically (a resumed run drops the steps it repeats)."""
        write_text(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in records))

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / METRICS)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.path / SUMMARY, summary)

    def summary(self) -> dict[str, Any] | None:
        p = self.path / SUMMARY
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    def write_data_report(self, report: dict[str, Any]) -> None:
        write_json(self.path / DATA_REPORT, report)

    def write_plan(self, plan: dict[str, Any]) -> None:
        write_json(self.path / PLAN, plan)

    def plan(self) -> dict[str, Any]:
        """What the planner resolved, with calibration and recoveries ({} before it exists)."""
        p = self.path / PLAN
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}

    def loaded_as(self) -> tuple[RunConfig, Any]:
        """The request, and its model settings as the run loaded the base model (the
        plan's quantization and embedding placement): chat and export load it the same way."""
        cfg, _ = self.read_config()
        return cfg, cfg.model.as_planned(self.plan())

    # -- status: running / finished / stopped / crashed ----------------------------------
    def mark_running(self) -> None:
        """A marker with this process's id; a run whose marker outlives its process crashed."""
        (self.path / STOP).unlink(missing_ok=True)  # an old request must not stop the run it resumes
        write_json(self.path / RUNNING, {"pid": os.getpid(), "host": socket.gethostname()})

    def clear_running(self) -> None:
        (self.path / RUNNING).unlink(missing_ok=True)
        (self.path / STOP).unlink(missing_ok=True)

    def request_stop(self) -> None:
        """Ask a running training to stop at its next step, with a checkpoint: how the
        window and `tunedesk stop` reach a run spread over several processes."""
        (self.path / STOP).touch()

    def stop_requested(self) -> bool:
        return (self.path / STOP).is_file()

    def status(self) -> str:
        marker = self.path / RUNNING
        if marker.is_file():
            try:
                info = json.loads(marker.read_text(encoding="utf-8"))
                alive = info.get("host") == socket.gethostname() and _pid_alive(int(info["pid"]))
            except (ValueError, KeyError, OSError):
                alive = False
            return "running" if alive else "crashed"
        summary = self.summary()
        return summary["status"] if summary else "crashed" if self.checkpoints() else "created"

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:06d}"

    def checkpoints(self) -> list[Path]:
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(p for p in self.checkpoints_dir.iterdir() if re.fullmatch(r"step-\d{6}", p.name))

    def prune_checkpoints(self, keep: int) -> None:
        for old in self.checkpoints()[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def list_runs(parent: str | Path | None = None) -> list[dict[str, Any]]:
    """Every run folder under `parent` (default: the user's runs folder), newest first,
    with what a runs table shows. Folders that are not runs are ignored."""
    root = Path(parent).expanduser() if parent else paths.default_runs_dir()
    rows = []
    for folder in root.iterdir() if root.is_dir() else []:
        if not (folder / CONFIG).is_file():
            continue
        run = RunDir(folder)
        try:
            cfg, _ = run.read_config()
        except (ValueError, TuneDeskError):
            continue  # a config from the future or hand-edited beyond repair: not listed
        summary = run.summary() or {}
        metrics = run.metrics()
        losses = [m for m in metrics if "loss" in m]
        evals = [m["eval_loss"] for m in metrics if m.get("eval_loss") is not None]
        rows.append({
            "path": str(folder),
            "name": folder.name,
            # data_report.json is written once, when the run starts (config.json changes on recovery)
            "created": (folder / DATA_REPORT if (folder / DATA_REPORT).is_file() else folder / CONFIG).stat().st_mtime,
            "model": cfg.model.source,
            "dataset": Path(cfg.data.path).name,
            "method": cfg.method.name,
            "status": run.status(),
            "steps": summary.get("steps", losses[-1]["step"] if losses else 0),
            "total_steps": summary.get("total_steps"),
            "rows_used": summary.get("rows_used"),
            "trained_tokens": summary.get("trained_tokens", sum(m.get("trained_tokens", 0) for m in losses) or None),
            "train_loss": summary.get("train_loss", losses[-1]["loss"] if losses else None),
            "eval_loss": summary.get("eval_loss", evals[-1] if evals else None),
            "best_step": summary.get("best_step"),
            "best_eval_loss": summary.get("best_eval_loss", min(evals) if evals else None),
            "stopped_early": bool(summary.get("stopped_early")),
            "general": (summary.get("probe") or {}).get("verdict"),
            "duration_s": summary.get("duration_s"),
            "resumable": bool(run.checkpoints()) and run.status() in ("stopped", "crashed"),
            "has_adapter": run.has_adapter(),
        })
    return sorted(rows, key=lambda r: r["created"], reverse=True)


LATEST = ("last", "latest")


def find_run(ref: str | Path, parent: str | Path | None = None) -> RunDir:
    """The run a user names on the command line: a run folder's path, or a run's name in
    `parent` (default: the user's runs folder). A name may be shortened to any part that
    only one run has; 'last' is the newest run. Every command that takes a run asks here."""
    path = Path(ref).expanduser()
    if (path / CONFIG).is_file():
        return RunDir(path)
    not_a_run = f"{ref}: not a TuneDesk run folder (no {CONFIG})"
    if len(path.parts) != 1:  # a path, not a name
        raise TuneDeskError(not_a_run if path.exists() else f"{ref}: no such run folder")
    root = Path(parent).expanduser() if parent else paths.default_runs_dir()
    names = sorted(d.name for d in root.iterdir() if (d / CONFIG).is_file()) if root.is_dir() else []
    text = str(ref)
    if text in names:
        return RunDir(root / text)
    if text in LATEST and names:
        return RunDir(list_runs(root)[0]["path"])
    matches = [n for n in names if n.startswith(text)] or [n for n in names if text in n]
    if len(matches) == 1:
        return RunDir(root / matches[0])
    if matches:
        shown = ", ".join(matches[:5]) + (f" and {len(matches) - 5} more" if len(matches) > 5 else "")
        raise TuneDeskError(f"'{text}' matches {len(matches)} runs in {root}: {shown}; give more of the name")
    if path.exists():  # a folder here of that name, and no run of that name there
        raise TuneDeskError(f"{not_a_run}, and no run of that name in {root}")
    where = "`tunedesk runs` lists them" if names else "it holds no runs yet"
    raise TuneDeskError(f"no run named '{text}' in {root} ({where}); or give the run folder's path")
