"""`tunedesk train` and `tunedesk resume`: their arguments, the request the arguments
make (one RunConfig, validated), and the run they start, spread over GPUs when asked.
`tunedesk inspect` shares the data options, so a file reads the same in both."""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from . import method_options, run_argument


def add_parsers(sub) -> None:
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
    data_options(t)
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
    run_argument(r, "run")
    r.add_argument("--gpus", type=int, default=1, help="continue on N GPUs (any number: the effective batch is kept; "
                                                       "a sharded run stays sharded on N > 1)")
    r.add_argument("--json-events", action="store_true", help="print one JSON object per event instead of a progress bar")


def data_options(p: argparse.ArgumentParser) -> None:
    from ..data.formats import FORMATS

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


def apply_data_options(cfg, a: argparse.Namespace) -> None:
    from ..errors import ConfigError

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
    apply_source_options(cfg, a)


def apply_source_options(cfg, a: argparse.Namespace) -> None:
    """A Hub dataset (or a folder laid out like one) and labeled data's settings."""
    from ..data.hub import is_hub_source

    cfg.data.from_hub = is_hub_source(cfg.data.path)
    if cfg.data.from_hub and Path(cfg.data.path).expanduser().is_dir():  # a folder: the same one from any directory
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    cfg.data.hub_config, cfg.data.hub_split = a.config, a.split
    if getattr(a, "max_samples", None):
        cfg.data.max_samples = a.max_samples
    cfg.data.labels = [x.strip() for x in a.labels.split(",") if x.strip()] if a.labels else None
    cfg.data.instruction = a.instruction


def train_config(a: argparse.Namespace):
    from ..config import RunConfig
    from ..errors import ConfigError
    from .machine import parse_size

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
    apply_data_options(cfg, a)
    method_options.apply(cfg, a)
    return cfg.validate()


def cmd_train(a: argparse.Namespace) -> int:
    from ..reporting import ConsoleReporter, JsonLinesReporter
    from ..runs import RunDir
    from ..training.distributed import check_cards, spread_over
    from ..training.train import Trainer
    from .runs import check_resumable

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


