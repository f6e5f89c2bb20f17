"""`tunedesk doctor`, `probe` and `plan`: this machine, and the plan for a model on it."""

from __future__ import annotations

import argparse
import json


def cmd_doctor(a: argparse.Namespace) -> int:
    from ..doctor import format_checks, run_checks

    checks = run_checks()
    print(json.dumps([c.to_dict() for c in checks], indent=2) if a.json else format_checks(checks))
    return 1 if any(c.status == "problem" for c in checks) else 0


def cmd_probe(a: argparse.Namespace) -> int:
    from .. import paths
    from ..hardware import describe, probe

    info = probe(a.out or paths.default_runs_dir())
    print(json.dumps(info.to_dict(), indent=2) if a.json else describe(info))
    return 0


def parse_size(text: str) -> int:
    from ..errors import ConfigError
    from ..fit.memory import GiB

    t = text.strip().upper().removesuffix("B").removesuffix("I").removesuffix("G")
    try:
        return int(float(t) * GiB)
    except ValueError:
        raise ConfigError(f"--vram takes a size like 8GB, not '{text}'") from None


def cmd_plan(a: argparse.Namespace) -> int:
    from .. import models
    from ..config import ModelConfig, RunConfig
    from ..fit import planner, sharding
    from ..fit.memory import GiB
    from ..hardware import probe
    from ..models import model_info, presets
    from ..models.loading import load_tokenizer
    from . import method_options

    if a.model in presets.names():
        info, tok_folder = model_info.from_preset(a.model), models.resolve("demo")
    else:
        tok_folder = models.resolve(a.model)
        info = model_info.from_folder(tok_folder)
    cfg = RunConfig()
    cfg.model.source, cfg.train.effective_batch, cfg.train.gpus = a.model, a.effective_batch, a.gpus
    cfg.train.shard = a.shard
    cfg.train.vram_gb = parse_size(a.vram) / GiB if a.vram else None
    method_options.apply(cfg, a)
    cfg.validate()  # a request train would refuse (GRPO with --shard, a bad reward) is refused here in the same words
    data_inputs = {}
    if a.data:
        from ..data import prepare

        cfg.data.path = a.data
        data = prepare(cfg.data, load_tokenizer(tok_folder, ModelConfig()))
        data_inputs = data.plan_inputs()
    p = sharding.resolve(cfg, info, planner.target_for(cfg, probe()), **data_inputs)
    if a.json:
        print(json.dumps(p.to_dict(), indent=2))
        return 0
    if p.device == "cpu":
        print(f"{'Fits' if p.fits else 'Does NOT fit'} the RAM: {p.ram_estimate_bytes / GiB:.2f} GiB of {p.ram_budget_bytes / GiB:.2f} GiB")
    else:
        per_card = ("" if p.processes < 2 else f" per card, the model sharded over {p.processes} GPUs" if p.sharded
                    else f" per card, on each of {p.processes} GPUs")
        print(f"{'Fits' if p.fits else 'Does NOT fit'}: {p.estimate_bytes / GiB:.2f} GiB of {p.budget_bytes / GiB:.2f} GiB budget{per_card}")
    for k, v in p.breakdown.items():
        print(f"  {k:<12} {v / GiB:6.2f} GiB")
    for k, why in p.reasons.items():
        print(f"{k:<22} {getattr(p, k, '')!s:<10} {why}")
    if p.suggestion:
        print(f"Suggestion: {p.suggestion}")
    return 0
