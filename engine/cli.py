"""`tunedesk` subcommands: the engine's command line. The `tunedesk` entry (tunedesk.py,
above gui/ and engine/) opens the window when given no arguments.

About 400 lines for nine subcommands, on purpose in one module: each command's
arguments and its body sit together, so `--help` and what the command does cannot drift
apart; the work itself is the engine's (a body is a few calls into it)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

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

    t = sub.add_parser("train", help="train a LoRA adapter on a dataset file")
    t.add_argument("data", nargs="?", help="dataset file (.jsonl, .json, .csv, .tsv, .parquet or .txt), or a Hugging Face "
                                           "Hub dataset (owner/name, --config, --split, --max-samples)")
    t.add_argument("--request", default=None, metavar="JSON",
                   help="train the request saved in this file (a run's config.json, or the window's) instead of "
                        "the options below; --gpus and --json-events still apply")
    t.add_argument("--model", default="demo", help="'demo' (built-in SmolLM2-135M-Instruct), a model folder, a .gguf file or a Hub id")
    t.add_argument("--out", default="", help="folder that holds the run folders (default: the user data folder)")
    t.add_argument("--name", default="", help="run folder name (default: date-model-dataset)")
    t.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps")
    t.add_argument("--epochs", type=float, default=None, help="passes over the training rows (default 3)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default 2e-4)")
    t.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default 16)")
    t.add_argument("--lora-alpha", type=int, default=None, help="LoRA alpha (default 2 x rank)")
    t.add_argument("--lora-dropout", type=float, default=None, help="LoRA dropout (default 0.05)")
    t.add_argument("--seq-len", type=int, default=None, help="max tokens per example (default: the longest row, if it fits the card)")
    t.add_argument("--long-rows", choices=["truncate", "skip"], default=None,
                   help="rows longer than the length: truncate (default: the start of the prompt is cut, the answer kept) or skip")
    t.add_argument("--batch", type=int, default=None, help="micro-batch size (default: the planner's)")
    t.add_argument("--grad-accum", type=int, default=None, help="gradient accumulation steps (default: effective batch / micro-batch)")
    t.add_argument("--quant", choices=["none", "8bit", "4bit"], default=None, help="bitsandbytes quantization, CUDA only (default: the planner's)")
    t.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="trade ~30%% speed for much less activation memory (default: the planner decides)")
    t.add_argument("--lean-memory", action=argparse.BooleanOptionalAction, default=None,
                   help="long examples on a small card: checkpointed activations in RAM, no LoRA dropout, 3-19%% slower "
                        "(default: the planner decides)")
    t.add_argument("--effective-batch", type=int, default=None, help="examples per optimizer step (default 16 on GPU, 4 on CPU)")
    t.add_argument("--packing", action=argparse.BooleanOptionalAction, default=None,
                   help="pack several short examples per row, without attention across them (default off)")
    t.add_argument("--vram", default=None, help="plan for a card of this size, e.g. 8GB (default: the GPU's free memory)")
    t.add_argument("--eval-every", type=int, default=None, help="validation loss every N steps (default 10)")
    t.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint every N steps (default 50)")
    t.add_argument("--system-prompt", default=None, help="system message for rows that have none")
    _data_options(t)
    t.add_argument("--val-share", type=float, default=None, help="share of rows held out for validation (default 0.05)")
    t.add_argument("--max-samples", type=int, default=None,
                   help="use at most N rows (shuffled with --seed); of a Hub dataset, its first N rows, streamed")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    t.add_argument("--gpus", type=int, default=None, help="spread the run over N GPUs, one process each (data-parallel)")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code to run (only for sources you trust)")
    t.add_argument("--allow-pickle", action="store_true", help="accept .bin/.pt pickle weights (only for sources you trust)")
    t.add_argument("--json-events", action="store_true", help="print one JSON object per event instead of a progress bar")

    r = sub.add_parser("resume", help="continue a stopped or interrupted run from its last checkpoint")
    r.add_argument("run", help="the run folder")
    r.add_argument("--gpus", type=int, default=1, help="continue on N GPUs (any number: the effective batch is kept)")
    r.add_argument("--json-events", action="store_true", help="print one JSON object per event instead of a progress bar")

    cmp_ = sub.add_parser("compare", help="the same prompt answered by the base model and the tuned one")
    cmp_.add_argument("run_dir", help="the run folder")
    cmp_.add_argument("--prompt", help="the prompt to answer twice")
    cmp_.add_argument("--validation", type=int, default=0, metavar="N",
                      help="instead: answer N validation rows both ways; writes compare/validation.md and .json")
    cmp_.add_argument("--accuracy", action="store_true",
                      help="labeled data: the share of validation rows each model answers with the right label "
                           "(greedy, a few tokens); writes compare/accuracy.json")
    cmp_.add_argument("--max-new-tokens", type=int, default=200)
    cmp_.add_argument("--sample", action="store_true", help="sample (with --temperature / --top-p) instead of greedy")
    cmp_.add_argument("--temperature", type=float, default=0.7)
    cmp_.add_argument("--top-p", type=float, default=0.9)
    cmp_.add_argument("--repetition-penalty", type=float, default=1.1)
    cmp_.add_argument("--seed", type=int, default=0)
    cmp_.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    cmp_.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="export a run: its adapter, or the model with the adapter merged in")
    ex.add_argument("run_dir", help="the run folder")
    ex.add_argument("--format", choices=[t.name for t in TARGETS], default=TARGETS[0].name,
                    help="; ".join(f"{t.name}: {t.help}" for t in TARGETS))
    ex.add_argument("--quant", choices=[*QTYPES, "all"], default="q8_0", help="GGUF weights (default q8_0; all: both)")
    ex.add_argument("--out", required=True, help="a new (or empty) folder to write")
    ex.add_argument("--dtype", choices=list(DTYPES), default="bf16", help="weights of a merged model (default bf16)")

    dr = sub.add_parser("doctor", help="check this computer for training: PyTorch, GPU, bitsandbytes, memory, disk, demo")
    dr.add_argument("--json", action="store_true")

    pr = sub.add_parser("probe", help="show the GPU, RAM and disk TuneDesk will plan for")
    pr.add_argument("--out", default="", help="folder whose free disk space to report (default: the runs folder)")
    pr.add_argument("--json", action="store_true")

    pl = sub.add_parser("plan", help="choose quantization, batch, length and checkpointing that fit the GPU")
    pl.add_argument("--model", default="demo", help="a model (as for train) or a preset name: " + "presets: see resources/presets")
    pl.add_argument("--data", default=None, help="dataset file whose token lengths to plan for")
    pl.add_argument("--vram", default=None, help="plan for a card of this size, e.g. 8GB or 12GB (default: the GPU's free memory)")
    pl.add_argument("--effective-batch", type=int, default=None, help="examples per optimizer step (default 16 on GPU, 4 on CPU)")
    pl.add_argument("--gpus", type=int, default=1, help="plan a run spread over N GPUs (each card holds the whole model)")
    pl.add_argument("--json", action="store_true")

    i = sub.add_parser("inspect", help="show how a dataset file is read, validated and rendered")
    i.add_argument("data", help="dataset file, or a Hugging Face Hub dataset (owner/name)")
    i.add_argument("--max-samples", type=int, default=None, help="of a Hub dataset: its first N rows, streamed")
    i.add_argument("--model", default="demo", help="whose tokenizer and chat template to render with (default: demo)")
    i.add_argument("--seq-len", type=int, default=None,
                   help="fit rows to this many tokens as training would: truncated (plain text: split) and counted "
                        "(default: none, every row shown whole; training's length is the plan's)")
    _data_options(i)
    i.add_argument("--json", action="store_true", help="one JSON object (stable keys, see README)")

    c = sub.add_parser("chat", help="answer a prompt with a run's tuned model (or its base model)")
    c.add_argument("run_dir")
    c.add_argument("--prompt", required=True)
    c.add_argument("--base", action="store_true", help="answer with the base model (adapter off)")
    c.add_argument("--max-new-tokens", type=int, default=200)
    c.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    c.add_argument("--json", action="store_true")
    return p


def _data_options(p: argparse.ArgumentParser) -> None:
    from .data.formats import FORMATS

    p.add_argument("--format", choices=[f.name for f in FORMATS], default=None,
                   help="override the detected format: " + ", ".join(f"{f.name} ({f.label})" for f in FORMATS))
    p.add_argument("--map", action="append", default=[], metavar="PART=FIELD",
                   help="override a field, e.g. --map prompt=Question --map answer=Response --map reasoning=Complex_CoT; "
                        "the parts of each format: " + "; ".join(f"{f.name}: {', '.join(f.roles)}" for f in FORMATS))
    p.add_argument("--config", default=None, help="a Hub dataset's configuration (subset), e.g. plain_text")
    p.add_argument("--split", default=None, help="a Hub dataset's split (default train)")
    p.add_argument("--labels", default=None, metavar="NAMES",
                   help="labeled data: names of integer labels in order, e.g. negative,positive (0 is negative)")
    p.add_argument("--instruction", default=None,
                   help="labeled data: the instruction before each text (default: e.g. 'Classify the sentiment of "
                        "this review as one of: negative, positive.')")
    p.add_argument("--reasoning", choices=["auto", "keep", "drop"], default=None,
                   help="chain of thought: auto (in <think> for reasoning models, else dropped), keep, drop")


def _apply_data_options(cfg, a: argparse.Namespace) -> None:
    from .errors import ConfigError

    cfg.data.format = a.format
    mapping = {}
    for item in a.map:
        part, sep, fieldname = item.partition("=")
        if not sep or not part or not fieldname:
            raise ConfigError(f"--map takes PART=FIELD, not '{item}'")
        mapping[part.strip()] = fieldname.strip()
    cfg.data.mapping = mapping or None
    if a.reasoning:
        cfg.data.reasoning = a.reasoning
    if getattr(a, "seq_len", None):
        cfg.data.max_seq_len = a.seq_len
    _apply_source_options(cfg, a)


def _apply_source_options(cfg, a: argparse.Namespace) -> None:
    """A Hub dataset (or a folder laid out like one) and labeled data's settings."""
    from .data.hub import is_hub_source

    cfg.data.from_hub = is_hub_source(cfg.data.path)
    if cfg.data.from_hub and Path(cfg.data.path).expanduser().is_dir():  # a folder: the same one from any directory
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    cfg.data.hub_config, cfg.data.hub_split = a.config, a.split
    if getattr(a, "max_samples", None):
        cfg.data.max_samples = a.max_samples
    cfg.data.labels = [x.strip() for x in a.labels.split(",") if x.strip()] if a.labels else None
    cfg.data.instruction = a.instruction


def train_config(a: argparse.Namespace):
    from .config import RunConfig
    from .errors import ConfigError

    if a.request:  # a saved request as it is (the planner resolves it anew, on this machine)
        try:
            cfg = RunConfig.from_dict(json.loads(Path(a.request).read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{a.request}: cannot read the request ({e})") from e
        cfg.train.gpus = a.gpus or cfg.train.gpus
        return cfg.validate()
    if not a.data:
        raise ConfigError("give a dataset file, or --request FILE")
    cfg = RunConfig()
    cfg.data.path = a.data
    cfg.model.source = a.model
    cfg.out_dir, cfg.name = a.out, a.name
    cfg.model.trust_remote_code = a.trust_remote_code
    cfg.model.allow_pickle = a.allow_pickle
    cfg.model.gradient_checkpointing = a.gradient_checkpointing
    cfg.model.lean_memory = a.lean_memory
    cfg.train.effective_batch = a.effective_batch
    cfg.train.vram_gb = _parse_size(a.vram) / 1024**3 if a.vram else None
    overrides = [
        (cfg.train, "max_steps", a.max_steps),
        (cfg.train, "epochs", a.epochs),
        (cfg.train, "lr", a.lr),
        (cfg.train, "micro_batch", a.batch),
        (cfg.train, "grad_accum", a.grad_accum),
        (cfg.train, "packing", a.packing),
        (cfg.train, "eval_every", a.eval_every),
        (cfg.train, "checkpoint_every", a.checkpoint_every),
        (cfg.train, "device", a.device),
        (cfg.train, "seed", a.seed),
        (cfg.lora, "r", a.lora_r),
        (cfg.data, "max_seq_len", a.seq_len),
        (cfg.data, "long_rows", a.long_rows),
        (cfg.data, "system_prompt", a.system_prompt),
        (cfg.data, "val_share", a.val_share),
        (cfg.data, "max_samples", a.max_samples),
        (cfg.model, "quantization", a.quant),
        (cfg.lora, "dropout", a.lora_dropout),
        (cfg.train, "gpus", a.gpus),
    ]
    for section, field, value in overrides:
        if value is not None:
            setattr(section, field, value)
    cfg.lora.alpha = a.lora_alpha if a.lora_alpha is not None else 2 * cfg.lora.r
    _apply_data_options(cfg, a)
    return cfg.validate()


def _cmd_train(a: argparse.Namespace) -> int:
    from .reporting import ConsoleReporter, JsonLinesReporter
    from .runs import RunDir
    from .training.distributed import check_cards, spread_over
    from .training.train import Trainer

    cfg = RunDir.open(a.run).read_config()[0] if a.command == "resume" else train_config(a)
    gpus = a.gpus if a.command == "resume" else cfg.train.gpus
    if gpus > 1 and "WORLD_SIZE" not in os.environ:  # this process launches the ranks and waits
        check_cards(gpus, cfg.train.device)
        return spread_over(gpus, a.argv + ([] if a.gpus else ["--gpus", str(gpus)]))
    reporter = JsonLinesReporter() if a.json_events else ConsoleReporter()

    def on_sigint(signum, frame):
        # First Ctrl+C: finish the current step, checkpoint, save the adapter, exit.
        # A second one aborts at once.
        if reporter.stop_requested():
            raise KeyboardInterrupt
        reporter.request_stop()
        reporter.warning("stopping after this step (Ctrl+C again to abort without saving)")

    signal.signal(signal.SIGINT, on_sigint)
    if a.command == "resume":
        trainer = Trainer.resume(a.run, reporter)
    else:
        trainer = Trainer(cfg, reporter)
        trainer.setup()
    summary = trainer.fit()
    if "WORLD_SIZE" in os.environ:  # a rank: torchrun reports any non-zero exit as a crash; the launcher answers
        return 0
    return 0 if summary["status"] == "finished" else 130


def _cmd_doctor(a: argparse.Namespace) -> int:
    from .doctor import format_checks, run_checks

    checks = run_checks()
    print(json.dumps([c.to_dict() for c in checks], indent=2) if a.json else format_checks(checks))
    return 1 if any(c.status == "problem" for c in checks) else 0


def _cmd_probe(a: argparse.Namespace) -> int:
    from . import paths
    from .hardware import describe, probe

    info = probe(a.out or paths.default_runs_dir())
    print(json.dumps(info.to_dict(), indent=2) if a.json else describe(info))
    return 0


def _parse_size(text: str) -> int:
    from .errors import ConfigError
    from .fit.memory import GiB

    t = text.strip().upper().removesuffix("B").removesuffix("I").removesuffix("G")
    try:
        return int(float(t) * GiB)
    except ValueError:
        raise ConfigError(f"--vram takes a size like 8GB, not '{text}'") from None


def _cmd_plan(a: argparse.Namespace) -> int:
    from . import models
    from .config import ModelConfig, RunConfig
    from .fit import planner
    from .fit.memory import GiB
    from .hardware import probe
    from .models import model_info, presets
    from .models.loading import load_tokenizer

    if a.model in presets.names():
        info, tok_folder = model_info.from_preset(a.model), models.resolve("demo")
    else:
        tok_folder = models.resolve(a.model)
        info = model_info.from_folder(tok_folder)
    cfg = RunConfig()
    cfg.model.source, cfg.train.effective_batch, cfg.train.gpus = a.model, a.effective_batch, a.gpus
    cfg.train.vram_gb = _parse_size(a.vram) / GiB if a.vram else None
    data_inputs = {}
    if a.data:
        from .data import prepare

        cfg.data.path = a.data
        data = prepare(cfg.data, load_tokenizer(tok_folder, ModelConfig()))
        data_inputs = data.plan_inputs()
    p = planner.resolve(cfg, info, planner.target_for(cfg, probe()), **data_inputs)
    if a.json:
        print(json.dumps(p.to_dict(), indent=2))
        return 0
    if p.device == "cpu":
        print(f"{'Fits' if p.fits else 'Does NOT fit'} the RAM: {p.ram_estimate_bytes / GiB:.2f} GiB of {p.ram_budget_bytes / GiB:.2f} GiB")
    else:
        per_card = f" per card, on each of {p.processes} GPUs" if p.processes > 1 else ""
        print(f"{'Fits' if p.fits else 'Does NOT fit'}: {p.estimate_bytes / GiB:.2f} GiB of {p.budget_bytes / GiB:.2f} GiB budget{per_card}")
    for k, v in p.breakdown.items():
        print(f"  {k:<12} {v / GiB:6.2f} GiB")
    for k, why in p.reasons.items():
        print(f"{k:<22} {getattr(p, k, '')!s:<10} {why}")
    if p.suggestion:
        print(f"Suggestion: {p.suggestion}")
    return 0


def _cmd_inspect(a: argparse.Namespace) -> int:
    from . import models
    from .config import ModelConfig, RunConfig
    from .data.report import format_text, inspect_file
    from .models.loading import load_tokenizer

    cfg = RunConfig()
    cfg.data.path = a.data
    _apply_data_options(cfg, a)
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


def _cmd_chat(a: argparse.Namespace) -> int:
    from .chat import ChatSession, GenerationSettings

    session = ChatSession(a.run_dir, device=a.device, status=lambda t: print(t, file=sys.stderr))
    text = session.answer(a.prompt, base=a.base, settings=GenerationSettings(max_new_tokens=a.max_new_tokens))
    print(json.dumps({"prompt": a.prompt, "base": a.base, "answer": text}) if a.json else text)
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from .chat import ChatSession, GenerationSettings, split_thinking
    from .chat.compare import validation_compare
    from .errors import ConfigError

    if not a.prompt and not a.validation and not a.accuracy:
        raise ConfigError("give --prompt TEXT, --validation N or --accuracy")
    settings = GenerationSettings(max_new_tokens=a.max_new_tokens, greedy=not a.sample, temperature=a.temperature,
                                  top_p=a.top_p, repetition_penalty=a.repetition_penalty, seed=a.seed)
    session = ChatSession(a.run_dir, device=a.device, status=lambda t: print(t, file=sys.stderr))
    if a.accuracy:
        from .chat.accuracy import label_accuracy, sentence

        tty = sys.stderr.isatty()
        result = label_accuracy(session, progress=lambda done, total: tty and print(f"\r{done}/{total} rows", end="",
                                                                                   file=sys.stderr))
        print(file=sys.stderr) if tty else None
        print(json.dumps(result, ensure_ascii=False) if a.json else
              f"{sentence(result)}; written to {session.run.path / 'compare'}/accuracy.json")
        return 0
    if a.validation:
        result = validation_compare(session, n=a.validation, settings=settings)
        if a.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(f"{len(result['examples'])} validation rows: mean loss base {result['mean_base_loss']}, "
                  f"tuned {result['mean_tuned_loss']}; written to {session.run.path / 'compare'}/validation.md and .json")
        return 0
    out: dict = {"prompt": a.prompt}
    for side in ("base", "tuned"):
        thought, answer = split_thinking(session.answer(a.prompt, base=side == "base", settings=settings))
        out[side], out[f"{side}_thinking"] = answer, thought
    if a.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for side in ("base", "tuned"):
            print(f"── {side} ──")
            if out[f"{side}_thinking"]:
                print(f"[thinking: {len(out[side + '_thinking'])} characters]")
            print(out[side])
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from .export import export

    out = export(a.run_dir, a.format, a.out, dtype=a.dtype, quant=a.quant, status=lambda t: print(t, file=sys.stderr))
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


def main(argv: list[str] | None = None) -> int:
    from .hardware import keep_allocations_compact

    keep_allocations_compact()  # before anything touches CUDA, in the window and the CLI alike
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a run spread over GPUs starts this command again
    if args.command is None:
        build_parser().print_help()
        return 0
    quiet_libraries()
    commands = {"train": _cmd_train, "resume": _cmd_train, "chat": _cmd_chat, "compare": _cmd_compare, "export": _cmd_export, "inspect": _cmd_inspect, "probe": _cmd_probe, "doctor": _cmd_doctor, "plan": _cmd_plan}
    try:
        return commands[args.command](args)
    except TuneDeskError as e:
        print(f"tunedesk {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
