"""`tunedesk` subcommands: the engine's command line. The `tunedesk` entry (tunedesk.py,
above gui/ and engine/) opens the window when given no arguments.

Each command's arguments sit beside its body, so `--help` and what the command does cannot
drift apart: here for the short ones, in engine/commands/ for the others (train and
resume: commands/training.py; chat and compare: commands/answers.py; plan, probe, doctor:
commands/machine.py; runs and show: commands/runs.py). Results go to stdout, progress and messages to stderr, so
`tunedesk inspect f.jsonl | less` or `tunedesk runs > runs.txt` capture the result.
A run is named by its folder or its name in the runs folder (engine/runs.py find_run),
resolved once in main() for every command that takes one."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .commands import RUNS_DIR_HELP, answers, method_options, run_argument, training
from .commands.training import train_config  # noqa: F401  (the window and tests build requests with it)
from .errors import TuneDeskError


def build_parser() -> argparse.ArgumentParser:
    from .export import TARGETS
    from .export.gguf import QTYPES
    from .export.merged import DTYPES

    p = argparse.ArgumentParser(
        prog="tunedesk", description="Fine-tune an open LLM on your own data.",
        epilog="With no arguments, tunedesk opens the desktop window; tunedesk --self-test checks this "
               "installation (window, engine, hardware, a 2-step demo training, one answer).")
    sub = p.add_subparsers(dest="command")

    training.add_parsers(sub)
    answers.add_parsers(sub)

    ex = sub.add_parser("export", help="export a run: its adapter, or the model with the adapter merged in")
    run_argument(ex, "run_dir")
    ex.add_argument("--format", choices=[t.name for t in TARGETS], default=None,
                    help="what to write (required; without it the command lists these): "
                         + "; ".join(f"{t.name}: {t.help}" for t in TARGETS))
    ex.add_argument("--quant", choices=[*QTYPES, "all"], default="q8_0", help="GGUF weights (default q8_0; all: both)")
    ex.add_argument("--out", required=True, help="a new (or empty) folder to write")
    ex.add_argument("--dtype", choices=list(DTYPES), default="bf16", help="weights of a merged model (default bf16)")
    ex.add_argument("--adapter", choices=["best", "last"], default="best", help="the run's best adapter (default) or its last step's")

    dr = sub.add_parser("doctor", help="check this computer for training: PyTorch, GPU, bitsandbytes, memory, disk, demo")
    dr.add_argument("--json", action="store_true")

    pr = sub.add_parser("probe", help="show the GPU, RAM and disk TuneDesk will plan for")
    pr.add_argument("--out", default="", help="folder whose free disk space to report (default: the runs folder)")
    pr.add_argument("--json", action="store_true")

    pl = sub.add_parser("plan", help="choose quantization, batch, length and checkpointing that fit the GPU")
    pl.add_argument("--model", default="demo", help="a model (as for train) or a preset name: " + "presets: see resources/presets")
    pl.add_argument("--data", default=None, help="dataset file whose token lengths to plan for (as for train)")
    pl.add_argument("--vram", default=None, help="plan for a card of this size, e.g. 8GB or 12GB (default: the GPU's free memory)")
    pl.add_argument("--effective-batch", type=int, default=None, help="examples per optimizer step (default 16 on GPU, 4 on CPU)")
    pl.add_argument("--gpus", type=int, default=1, help="plan a run spread over N GPUs")
    pl.add_argument("--shard", action=argparse.BooleanOptionalAction, default=None,
                    help="with --gpus N: plan the model sharded over the cards, or whole on each (default: by memory)")
    pl.add_argument("--json", action="store_true")
    method_options.add(pl)  # a DPO / ORPO pair is two sequences: the plan counts them

    i = sub.add_parser("inspect", help="show how a dataset file is read, validated and rendered")
    i.add_argument("data", help="dataset file (.jsonl, .json, .csv, .tsv, .parquet or .txt, or .gz of the text ones), "
                                "or a Hugging Face Hub dataset (owner/name)")
    i.add_argument("--max-samples", type=int, default=None, help="of a Hub dataset: its first N rows, streamed")
    i.add_argument("--model", default="demo", help="whose tokenizer and chat template to render with (default: demo)")
    i.add_argument("--seq-len", type=int, default=None,
                   help="fit rows to this many tokens as training would: truncated (plain text: split) and counted "
                        "(default: none, every row shown whole; training's length is the plan's)")
    training.data_options(i)
    i.add_argument("--json", action="store_true", help="one JSON object (stable keys, see README)")

    rs = sub.add_parser("runs", help="list the runs: name, status, model, steps, losses, date")
    rs.add_argument("--runs-dir", default=None, metavar="DIR", help=RUNS_DIR_HELP)
    rs.add_argument("--json", action="store_true", help="every field of every run, as JSON")

    sh = sub.add_parser("show", help="one run: its settings, losses, folder and what to do next")
    run_argument(sh, "run")
    sh.add_argument("--json", action="store_true")
    return p


RUN_DESTS = ("run", "run_dir")  # the commands' names for the run they take


def _cmd_inspect(a: argparse.Namespace) -> int:
    from . import models
    from .config import ModelConfig, RunConfig
    from .data.report import format_text, inspect_file
    from .models.loading import load_tokenizer

    cfg = RunConfig()
    cfg.data.path = a.data
    training.apply_data_options(cfg, a)
    cfg.validate()
    status = (lambda t: print(t, file=sys.stderr)) if not a.json else (lambda t: None)
    folder = models.resolve(a.model, status=status)
    tokenizer = load_tokenizer(folder, ModelConfig(source=a.model))
    report = inspect_file(cfg.data, tokenizer, model_name=models.display_name(a.model))
    if a.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_text(report, color=sys.stdout.isatty()))
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .export import TARGETS, export

    if a.format is None:  # four very different results (MBs to GBs): the user picks one
        raise ConfigError("choose what to export with --format:\n" + "".join(f"  {t.name:<8} {t.help}\n" for t in TARGETS)
                          + f"for example: tunedesk export {Path(a.run_dir).name} --format adapter --out DIR")
    out = export(a.run_dir, a.format, a.out, dtype=a.dtype, quant=a.quant, status=lambda t: print(t, file=sys.stderr),
                 adapter=a.adapter)
    print(out)
    return 0


def quiet_libraries() -> None:
    # Library chatter (tqdm bars of the GGUF reader, HF advisory warnings) is not for users.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("transformers", "bitsandbytes", "peft", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="(transformers|peft|torch)")
    from transformers.utils import logging as hf_logging

    # Per-tensor "Loading weights" bars; downloads keep huggingface_hub's own bar.
    hf_logging.disable_progress_bar()


def _resolve_run(args: argparse.Namespace) -> None:
    """A run given by name becomes its folder, here once for every command that takes one."""
    from .runs import find_run

    for dest in RUN_DESTS:
        if isinstance(getattr(args, dest, None), str):
            setattr(args, dest, str(find_run(getattr(args, dest), args.runs_dir).path))


def main(argv: list[str] | None = None) -> int:
    from .hardware import keep_allocations_compact

    keep_allocations_compact()  # before anything touches CUDA, in the window and the CLI alike
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a run spread over GPUs starts this command again
    if args.command is None:
        build_parser().print_help()
        return 0
    quiet_libraries()
    from .commands import machine, runs

    commands = {"train": training.cmd_train, "resume": training.cmd_train, "chat": answers.cmd_chat,
                "compare": answers.cmd_compare,
                "export": _cmd_export, "inspect": _cmd_inspect, "probe": machine.cmd_probe, "doctor": machine.cmd_doctor,
                "plan": machine.cmd_plan, "runs": runs.cmd_runs, "show": runs.cmd_show}
    try:
        _resolve_run(args)
        return commands[args.command](args)
    except TuneDeskError as e:
        print(f"tunedesk {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
