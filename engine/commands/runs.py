"""`tunedesk runs` (the runs folder as a table) and `tunedesk show RUN` (one run).

Results go to stdout, so `tunedesk runs | grep finished` works; "no runs yet" is a
message for people and goes to stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .. import paths
from ..reporting import loss_text
from ..runs import find_run, list_runs

COLUMNS = ("NAME", "STATUS", "MODEL", "STEPS", "LAST LOSS", "BEST EVAL", "DATE")


def _model(source: str) -> str:
    return Path(source).name if ("/" in source or "\\" in source) and Path(source).exists() else source


def _steps(row: dict[str, Any]) -> str:
    return f"{row['steps']}/{row['total_steps']}" if row.get("total_steps") else str(row["steps"])


def _date(created: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(created))


def format_runs(rows: list[dict[str, Any]]) -> str:
    table = [COLUMNS] + [
        (r["name"], r["status"], _model(r["model"]), _steps(r), loss_text(r["train_loss"]),
         loss_text(r["best_eval_loss"]), _date(r["created"]))
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in table)


def cmd_runs(a: argparse.Namespace) -> int:
    root = Path(a.runs_dir).expanduser() if a.runs_dir else paths.default_runs_dir()
    rows = list_runs(root)
    if a.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"No runs in {root} yet: `tunedesk train FILE` makes one.", file=sys.stderr)
    else:
        print(format_runs(rows))
        print(f"\n{len(rows)} run(s) in {root}. A command that takes a run accepts its name (or any part of it that "
              "only one run has, or 'last') or its folder.", file=sys.stderr)
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    run = find_run(a.run, a.runs_dir)
    row = next(r for r in list_runs(run.path.parent) if Path(r["path"]) == run.path)
    summary = run.summary() or {}
    plan = run.plan()
    if a.json:
        print(json.dumps({**row, "summary": summary, "plan": plan}, indent=2, default=str))
        return 0
    cfg, _ = run.read_config()
    lines = [
        f"{row['name']}  ({row['status']})",
        f"  folder      {run.path}",
        f"  started     {_date(row['created'])}",
        f"  model       {cfg.model.source}",
        f"  data        {cfg.data.path}",
        f"  steps       {_steps(row)}",
        f"  train loss  {loss_text(row['train_loss'])} (last)",
        f"  eval loss   {loss_text(row['eval_loss'])} (last), {loss_text(row['best_eval_loss'])} (best)",
    ]
    if row.get("duration_s"):
        lines.append(f"  duration    {row['duration_s']:.0f} s")
    if summary.get("error"):
        lines.append(f"  error       {summary['error']}")
    lines.append(f"  adapter     {'yes: ' + str(run.adapter_dir) if row['has_adapter'] else 'none yet'}")
    lines.append("")
    lines.append("Next: " + next_steps(row))
    print("\n".join(lines))
    return 0


def next_steps(row: dict[str, Any]) -> str:
    name = row["name"]
    if row["resumable"]:
        return f"tunedesk resume {name}"
    if row["has_adapter"]:
        return (f"tunedesk chat {name} --prompt \"…\";  tunedesk compare {name} --prompt \"…\";  "
                f"tunedesk export {name} --format adapter --out DIR")
    return f"tunedesk train --request {Path(row['path']) / 'config.json'}  (train its settings again)"


def check_resumable(run) -> None:
    """A run that already ended says so, with the way to train it further."""
    from ..errors import ConfigError

    status = run.status()
    if status in ("finished", "failed") or (status == "stopped" and not run.checkpoints()):
        s = run.summary() or {}
        how = (f"to train more, start a new run from its settings: tunedesk train --request {run.path / 'config.json'} "
               f"--max-steps N (or --epochs E)")
        if status == "finished":
            raise ConfigError(f"{run.path.name} already finished ({s.get('steps')} steps, train loss "
                              f"{loss_text(s.get('train_loss'))}); nothing to resume. {how[0].upper() + how[1:]}")
        raise ConfigError(f"{run.path.name} ended as {status} with no checkpoint to resume from"
                          f"{': ' + s['error'] if s.get('error') else ''}; {how}")
    if status == "running":
        raise ConfigError(f"{run.path.name} is still training (another tunedesk is running it)")
