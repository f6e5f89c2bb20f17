"""`tunedesk` subcommands: the engine's command line. The `tunedesk` entry (tunedesk.py,
above gui/ and engine/) opens the window when given no arguments.

Each command's arguments sit here, beside its body when that body is a few calls into the
engine, so `--help` and what the command does cannot drift apart; longer bodies live in
engine/commands/. Results go to stdout, progress and messages to stderr, so
`tunedesk inspect f.jsonl | less` or `tunedesk runs > runs.txt` capture the result.
A run is named by its folder or its name in the runs folder (engine/runs.py find_run),
resolved once in main() for every command that takes one."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from .commands import method_options
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
                        "the options below, as a new run; --max-steps, --epochs, --out, --name, --gpus and "
                        "--json-events still apply (how to train a finished run further)")
    t.add_argument("--model", default="demo", help="'demo' (built-in SmolLM2-135M-Instruct), a model folder, a .gguf file or a Hub id")
    t.add_argument("--out", default="", help="folder that holds the run folders (default: the user data folder)")
    t.add_argument("--name", default="", help="run folder name (default: date-model-dataset)")
    t.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (default: as many as --epochs takes)")
    t.add_argument("--epochs", type=float, default=None, help="passes over the training rows (default: sized to the data, 3 for most files)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default: sized to the run, 5e-4 short / 2e-4 long)")
    t.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default: sized to the data, 16 for most files)")
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
    t.add_argument("--eval-every", type=int, default=None, help="validation loss every N steps (default: about 12 per run)")
    t.add_argument("--patience", type=int, default=None, help="stop after N evaluations without a better validation loss (default 3)")
    t.add_argument("--no-early-stop", dest="early_stop", action="store_false", help="train every step; the best adapter is still kept")
    t.add_argument("--replay-share", type=float, default=None,
                   help="share of the training mix made of the base model's own answers, against forgetting (default 0.2; 0: off)")
    t.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint every N steps (default 50)")
    t.add_argument("--system-prompt", default=None, help="system message for rows that have none")
    _data_options(t)
    method_options.add(t)
    t.add_argument("--val-share", type=float, default=None, help="share of rows held out for validation (default 0.05)")
    t.add_argument("--max-samples", type=int, default=None,
                   help="use at most N rows (shuffled with --seed); of a Hub dataset, its first N rows, streamed")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="auto (default): the GPU when PyTorch can use one, else the CPU")
    t.add_argument("--gpus", type=int, default=None, help="spread the run over N GPUs, one process each")
    t.add_argument("--shard", action=argparse.BooleanOptionalAction, default=None,
                   help="with --gpus N: shard the model over the cards (FSDP2), or copy it whole to each (--no-shard); "
                        "default: sharded only when the model does not fit one card")
    t.add_argument("--seed", type=int, default=None, help="shuffling, split and LoRA initialisation (default 42)")
    t.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code to run (only for sources you trust)")
    t.add_argument("--allow-pickle", action="store_true", help="accept .bin/.pt pickle weights (only for sources you trust)")
    t.add_argument("--json-events", action="store_true", help="print one JSON object per event instead of a progress bar")

    r = sub.add_parser("resume", help="continue a stopped or interrupted run from its last checkpoint")
    _run_argument(r, "run")
    r.add_argument("--gpus", type=int, default=1, help="continue on N GPUs (any number: the effective batch is kept; "
                                                       "a sharded run stays sharded on N > 1)")
    r.add_argument("--json-events", action="store_true", help="print one JSON object per event instead of a progress bar")

    cmp_ = sub.add_parser("compare", help="the same prompt answered by the base model and the tuned one")
    _run_argument(cmp_, "run_dir")
    cmp_.add_argument("--prompt", help="the prompt to answer twice")
    cmp_.add_argument("--validation", type=int, default=0, metavar="N",
                      help="instead: answer N validation rows both ways; writes compare/validation.md and .json")
    cmp_.add_argument("--tools", default=None, metavar="FILE|data",
                      help="function schemas the model may call: a JSON file (a list of schemas), or 'data' for those "
                           "in the run's dataset; written into the prompt as training wrote them")
    cmp_.add_argument("--accuracy", action="store_true",
                      help="labeled data: the share of validation rows each model answers with the right label "
                           "(greedy, a few tokens); writes compare/accuracy.json")
    cmp_.add_argument("--max-new-tokens", type=int, default=200, help="longest answer, in tokens (default 200)")
    cmp_.add_argument("--sample", action="store_true", help="sample (with --temperature / --top-p) instead of greedy")
    cmp_.add_argument("--temperature", type=float, default=0.7, help="with --sample (default 0.7)")
    cmp_.add_argument("--top-p", type=float, default=0.9, help="with --sample (default 0.9)")
    cmp_.add_argument("--repetition-penalty", type=float, default=1.1, help="(default 1.1)")
    cmp_.add_argument("--seed", type=int, default=0, help="with --sample (default 0)")
    cmp_.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="(default auto: the GPU if usable)")
    cmp_.add_argument("--json", action="store_true", help="one JSON object instead of text")
    cmp_.add_argument("--adapter", choices=["best", "last"], default="best", help="the run's best adapter (default) or its last step's")

    ex = sub.add_parser("export", help="export a run: its adapter, or the model with the adapter merged in")
    _run_argument(ex, "run_dir")
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
    _data_options(i)
    i.add_argument("--json", action="store_true", help="one JSON object (stable keys, see README)")

    c = sub.add_parser("chat", help="answer a prompt with a run's tuned model (or its base model)")
    _run_argument(c, "run_dir")
    c.add_argument("--prompt", required=True)
    c.add_argument("--base", action="store_true", help="answer with the base model (adapter off)")
    c.add_argument("--tools", default=None, metavar="FILE|data",
                   help="function schemas the model may call: a JSON file (a list of schemas), or 'data' for those "
                        "in the run's dataset; written into the prompt as training wrote them")
    c.add_argument("--max-new-tokens", type=int, default=200, help="longest answer, in tokens (default 200)")
    c.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="(default auto: the GPU if usable)")
    c.add_argument("--json", action="store_true", help="one JSON object instead of text")
    c.add_argument("--adapter", choices=["best", "last"], default="best", help="the run's best adapter (default) or its last step's")

    rs = sub.add_parser("runs", help="list the runs: name, status, model, steps, losses, date")
    rs.add_argument("--runs-dir", default=None, metavar="DIR", help=RUNS_DIR_HELP)
    rs.add_argument("--json", action="store_true", help="every field of every run, as JSON")

    sh = sub.add_parser("show", help="one run: its settings, losses, folder and what to do next")
    _run_argument(sh, "run")
    sh.add_argument("--json", action="store_true")
    return p


RUNS_DIR_HELP = "the folder that holds the runs (default: the user data folder's runs, where train puts them)"
RUN_DESTS = ("run", "run_dir")  # the commands' names for the run they take


def _run_argument(p: argparse.ArgumentParser, dest: str) -> None:
    p.add_argument(dest, metavar="RUN", help="the run: its name as `tunedesk runs` lists it (or any part of the name "
                                            "that only one run has, or 'last'), or its folder")
    p.add_argument("--runs-dir", default=None, metavar="DIR", help=RUNS_DIR_HELP + "; where RUN names are looked up")


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
    from .commands.machine import parse_size
    from .config import RunConfig
    from .errors import ConfigError

    if a.request:  # a saved request as it is (the planner resolves it anew, on this machine)
        try:
            cfg = RunConfig.from_dict(json.loads(Path(a.request).read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{a.request}: cannot read the request ({e})") from e
        cfg.out_dir, cfg.name = a.out or cfg.out_dir, a.name or cfg.name
        cfg.train.gpus = a.gpus or cfg.train.gpus
        for field in ("max_steps", "epochs"):  # training a finished run further
            if getattr(a, field) is not None:
                setattr(cfg.train, field, getattr(a, field))
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
    cfg.train.vram_gb = parse_size(a.vram) / 1024**3 if a.vram else None
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
        (cfg.train, "shard", a.shard),
        (cfg.train, "patience", a.patience),
        (cfg.train, "replay_share", a.replay_share),
    ]
    cfg.train.early_stop = a.early_stop
    for section, field, value in overrides:
        if value is not None:
            setattr(section, field, value)
    cfg.lora.alpha = a.lora_alpha
    _apply_data_options(cfg, a)
    method_options.apply(cfg, a)
    return cfg.validate()


def _cmd_train(a: argparse.Namespace) -> int:
    from .commands.runs import check_resumable
    from .reporting import ConsoleReporter, JsonLinesReporter
    from .runs import RunDir
    from .training.distributed import check_cards, spread_over
    from .training.train import Trainer

    if a.command == "resume" and "WORLD_SIZE" not in os.environ:  # the ranks of a resumed run find it running
        check_resumable(RunDir.open(a.run))
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
    from .chat import ChatSession, GenerationSettings, tools_for

    tools = tools_for(a.run_dir, a.tools)
    session = ChatSession(a.run_dir, device=a.device, status=lambda t: print(t, file=sys.stderr), adapter=a.adapter)
    text = session.answer(a.prompt, base=a.base, settings=GenerationSettings(max_new_tokens=a.max_new_tokens), tools=tools)
    print(json.dumps({"prompt": a.prompt, "base": a.base, "answer": text}) if a.json else text)
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from .chat import ChatSession, GenerationSettings, split_thinking, tools_for
    from .chat.compare import validation_compare
    from .data.tool_form import calls_in
    from .errors import ConfigError
    from .reporting import loss_text

    if not a.prompt and not a.validation and not a.accuracy:
        raise ConfigError("give --prompt TEXT, --validation N or --accuracy")
    settings = GenerationSettings(max_new_tokens=a.max_new_tokens, greedy=not a.sample, temperature=a.temperature,
                                  top_p=a.top_p, repetition_penalty=a.repetition_penalty, seed=a.seed)
    tools = tools_for(a.run_dir, a.tools) if a.prompt and not a.validation else None
    session = ChatSession(a.run_dir, device=a.device, status=lambda t: print(t, file=sys.stderr), adapter=a.adapter)
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
            print(f"{len(result['examples'])} validation rows: mean loss base {loss_text(result['mean_base_loss'])}, "
                  f"tuned {loss_text(result['mean_tuned_loss'])}; written to {session.run.path / 'compare'}/validation.md "
                  "and .json")
        return 0
    out: dict = {"prompt": a.prompt, "tools": [t["function"]["name"] for t in tools or []]}
    for side in ("base", "tuned"):
        thought, answer = split_thinking(session.answer(a.prompt, base=side == "base", settings=settings, tools=tools))
        out[side], out[f"{side}_thinking"] = answer, thought
        if tools:
            out[f"{side}_calls"] = calls_in(answer)
    if a.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for side in ("base", "tuned"):
            print(f"── {side} ──")
            if out[f"{side}_thinking"]:
                print(f"[thinking: {len(out[side + '_thinking'])} characters]")
            print(out[side])
            if tools:
                print(f"[{len(out[side + '_calls'])} well-formed call(s)]")
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

    commands = {"train": _cmd_train, "resume": _cmd_train, "chat": _cmd_chat, "compare": _cmd_compare,
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
