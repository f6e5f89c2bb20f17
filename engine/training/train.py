"""The training recipe: setup -> fit (steps, evaluations, checkpoints) -> save.

One plain loop rather than HF's Trainer: the product needs to stop on request between
steps, report every step through the Reporter, checkpoint atomically, and recover from
out-of-memory by re-splitting a step; all of that is simpler to own here.

The request (RunConfig) is read, never written: what the run uses is `self.plan`, the
planner's frozen Plan, replaced (not edited) by calibration and out-of-memory recovery.
config.json keeps the request, plan.json the plan with its calibration and every
recovery, and each checkpoint the plan it was taken under, so a resumed run continues
that plan and "Train again" plans anew from the request.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import models
from ..atomic import atomic_dir, write_json
from ..config import LoraConfig, RunConfig
from ..data import PreparedData, prepare
from ..data.batching import (
    collate,
    collate_packed,
    epoch_order,
    eval_batches,
    pack_rows,
)
from ..errors import FitError, TuneDeskError
from ..fit.card_fit import CardFit
from ..fit.planner import Plan
from ..hardware import keep_allocations_compact, keep_ram_compact
from ..models.loading import (
    Placement,
    add_lora,
    choose_placement,
    load_model,
    load_tokenizer,
)
from ..models.loss import batch_loss_sum, count_trained, loss_sum
from ..reporting import Reporter
from ..runs import RunDir
from . import checkpoints, preflight


@dataclass
class Position:
    """Where the data stream is: which epoch, and how many of its examples are used."""

    epoch: int = 0
    index: int = 0


def cosine_with_warmup(total: int, warmup: int):
    """LR multiplier per step: linear warmup, then cosine decay to zero after the last step.

    Step 0 already gets 1/(warmup+1) of the peak: a first step at lr 0 would be wasted.
    """

    def mult(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return mult


def make_optimizer(model, t, optimizer: str) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adamw_8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)


class Trainer:
    def __init__(self, cfg: RunConfig, reporter: Reporter | None = None) -> None:
        self.cfg = cfg.validate()
        self.reporter = reporter or Reporter()
        self.run: RunDir | None = None
        self.card: CardFit | None = None  # the plan and its record: set up in setup()
        self.step = 0
        self.pos = Position()
        self.history: list[dict[str, Any]] = []
        self.group = 1  # length-grouping unit: the planned micro-batch, set in setup()
        self._order_cache: tuple[int, list[int]] = (-1, [])
        self.trained_tokens = 0

    @property
    def plan(self) -> Plan:
        """What the run uses now (engine/fit/card_fit.py keeps it true to the card)."""
        return self.card.plan

    # -- setup ----------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, reporter: Reporter | None = None) -> "Trainer":
        """A trainer set up to continue `run_dir` from its last checkpoint: the run's
        request, and the plan its checkpoint was taken under."""
        run = RunDir.open(run_dir)
        if not run.checkpoints():
            status = run.status()
            if status == "finished":
                raise TuneDeskError(f"{run.path.name} already finished; use Train again to start a new run from its settings")
            raise TuneDeskError(f"{run.path}: no checkpoint to resume from")
        cfg, _ = run.read_config()
        trainer = cls(cfg, reporter)
        trainer.setup(resume=run)
        return trainer

    def setup(self, resume: RunDir | None = None) -> None:
        cfg, rep = self.cfg, self.reporter
        keep_allocations_compact()
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        rep.status("Preparing the model…")
        folder = models.resolve(
            cfg.model.source, allow_pickle=cfg.model.allow_pickle, revision=cfg.model.revision, status=rep.status
        )
        self.model_folder = folder
        self.tokenizer = load_tokenizer(folder, cfg.model)
        cuda = torch.cuda.is_available() and cfg.train.device != "cpu"
        if not cuda:
            keep_ram_compact()

        rep.status(f"Reading {Path(cfg.data.path).name}…")
        self.data: PreparedData = prepare(cfg.data, self.tokenizer)
        from ..models import model_info

        self.info = model_info.from_folder(folder)
        preflight.check_vocabulary(self.data, self.info, models.display_name(cfg.model.source))
        self.card = CardFit(cfg, self.info, self.data, rep, on_change=self._write_plan)
        self.card.choose(cuda, resume)
        report = self.data.report()
        rep.status(
            f"Data: {report['format']} format, {report['kept']} of {report['rows']} rows kept "
            f"({report['train']} train / {report['val']} validation)"
        )
        if self.data.skipped:
            first = ", ".join(f"row {p.row} ({p.reason})" for p in self.data.skipped[:3])
            rep.warning(f"{len(self.data.skipped)} row(s) skipped: {first}{' …' if len(self.data.skipped) > 3 else ''}")
        for note in self.data.notes:
            rep.status(f"Note: {note}")
        preflight.check_size(self.data, cfg.data.val_share, rep)

        p = self.plan
        model_cfg = cfg.model.as_planned(p.to_dict())
        self.placement: Placement = choose_placement(model_cfg, cfg.train.device, rep.warning)
        rep.status(f"Loading {models.display_name(cfg.model.source)} on {self.placement.device.upper()}…")
        base = load_model(folder, model_cfg, self.placement, embedding_module=self.info.embedding_module)
        lora = LoraConfig(r=p.lora_r, alpha=p.lora_alpha, dropout=p.lora_dropout, target_modules=p.lora_targets)
        self.model = add_lora(base, lora, gradient_checkpointing=p.gradient_checkpointing, lean=p.lean_memory)
        self.device = torch.device("cuda", torch.cuda.current_device()) if self.placement.device == "cuda" else torch.device("cpu")
        self.group = p.micro_batch  # length-grouping unit; fixed for the run

        self.optimizer = make_optimizer(self.model, cfg.train, p.optimizer)
        # fp16 needs loss scaling; bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.placement.dtype == torch.float16)
        calibrate = self.card.calibrate_gpu if self.placement.device == "cuda" else self.card.calibrate_ram
        calibrate(self.model, lambda: not self._out_of_memory(self._probe_step))
        self.total_steps = self._total_steps()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_with_warmup(self.total_steps, math.ceil(cfg.train.warmup_ratio * self.total_steps))
        )

        if resume is not None:
            self.run = resume
            self._restore(resume.checkpoints()[-1])
            return
        self.run = RunDir.create(cfg, model_name=models.display_name(cfg.model.source))
        self.run.write_config(cfg, resolved_model_folder=str(folder))
        self.run.write_data_report(self.data.report())
        self._write_plan()

    def _write_plan(self) -> None:
        if self.run is not None:
            self.run.write_plan(self.card.record())

    def _total_steps(self) -> int:
        t, p = self.cfg.train, self.plan
        if t.max_steps:
            return t.max_steps
        return max(1, math.ceil(t.epochs * len(self.data.train) / (p.micro_batch * p.grad_accum)))

    # -- data stream ----------------------------------------------------------------
    def _order(self, epoch: int) -> list[int]:
        if self._order_cache[0] != epoch:
            self._order_cache = (epoch, epoch_order(self.data.train, self.group, self.cfg.train.seed, epoch))
        return self._order_cache[1]

    def _next_batch(self) -> list[int]:
        """The next micro-batch: the next examples of this epoch's order."""
        order = self._order(self.pos.epoch)
        if self.pos.index >= len(order):
            self.pos = Position(self.pos.epoch + 1, 0)
            order = self._order(self.pos.epoch)
        take = order[self.pos.index : self.pos.index + self.plan.micro_batch]
        self.pos.index += len(take)
        return take

    @property
    def epoch_float(self) -> float:
        return self.pos.epoch + self.pos.index / max(1, len(self.data.train))

    # -- one optimizer step ---------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=self.placement.dtype, enabled=self.placement.autocast)

    def train_step(self) -> dict[str, Any]:
        """One optimizer step; an out-of-memory error re-runs the same step smaller."""
        start = Position(self.pos.epoch, self.pos.index)
        while True:
            result: dict[str, Any] = {}
            if not self._out_of_memory(lambda: result.update(self._train_step())):
                return result
            self.pos = Position(start.epoch, start.index)  # the same examples again, split finer
            self._recover(f"Out of GPU memory at step {self.step + 1}")

    @staticmethod
    def _out_of_memory(fn, *args) -> bool:
        """Run fn; True if CUDA ran out of memory. Recovery happens in the caller, after
        the handler has exited: inside it, the traceback still holds every activation of
        the failed step, and no smaller retry could fit next to them."""
        try:
            fn(*args)
            return False
        except torch.OutOfMemoryError:
            return True

    def _recover(self, context: str) -> None:
        """Free what the failed step held, then the next smaller plan (engine/fit/card_fit.py).
        Runs after the exception handler has exited: inside it, the traceback still holds
        every activation of the failed step."""
        self.optimizer.zero_grad(set_to_none=True)
        old = self.card.recover("out of memory", context, self.model, self.step + 1)
        if self.plan.seq_len != old.seq_len:  # rows were truncated anew: their order is drawn again
            self._order_cache = (-1, [])
            self.pos.index = min(self.pos.index, len(self.data.train))

    def _probe_step(self) -> None:
        p = self.plan
        vocab = self.model.get_input_embeddings().weight.shape[0]
        # Train mode, as in the real step: a freshly loaded model is in eval mode, where
        # gradient checkpointing does not act and every layer's activations are kept.
        self.model.train()
        try:
            ids = torch.randint(0, vocab, (p.micro_batch, p.seq_len), device=self.device)
            with self._autocast():
                loss = loss_sum(self.model, ids, None, ids) / ids.numel()
            loss.backward()
        finally:
            self.optimizer.zero_grad(set_to_none=True)

    def _train_step(self) -> dict[str, Any]:
        t = self.cfg.train
        self.model.train()
        idx = [self._next_batch() for _ in range(self.plan.grad_accum)]
        batches = self._packed(idx) if t.packing else [
            collate([self.data.train[i] for i in b], self.tokenizer.pad_token_id) for b in idx if b
        ]
        n_trained = sum(count_trained(b["labels"]) for b in batches)
        if n_trained == 0:  # never report success for a step that learned nothing
            raise FitError(f"step {self.step + 1} has no answer tokens to train on "
                           f"(rows {', '.join(str(self.data.train[i].row) for b in idx for i in b[:3])}); nothing was trained")
        tokens = sum(int(b["attention_mask"].sum()) for b in batches)
        total = 0.0
        for b in batches:
            with self._autocast():
                loss = batch_loss_sum(self.model, b, self.device) / max(1, n_trained)
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.step += 1
        return {"loss": total, "lr": lr, "grad_norm": grad_norm, "tokens": tokens, "trained_tokens": n_trained}

    def _packed(self, idx: list[list[int]]) -> list[dict[str, torch.Tensor]]:
        """The step's examples packed into rows of up to the plan's length, in
        micro-batches of micro_batch rows: the planned shape, with less padding."""
        mb = self.plan.micro_batch
        examples = [self.data.train[i] for b in idx for i in b]
        rows = [[examples[i] for i in r] for r in pack_rows([len(e) for e in examples], self.plan.seq_len)]
        return [collate_packed(rows[k : k + mb], self.tokenizer.pad_token_id) for k in range(0, len(rows), mb)]

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Token-weighted mean loss over the validation split (halving its batch on OOM)."""
        if not self.data.val:
            return None
        self.model.eval()
        batch = self.plan.micro_batch
        sums: list[float] = [0.0, 0]

        def run(batch: int) -> None:
            sums[:] = [0.0, 0]
            for idx in eval_batches(self.data.val, batch):
                b = collate([self.data.val[i] for i in idx], self.tokenizer.pad_token_id)
                with self._autocast():
                    sums[0] += float(batch_loss_sum(self.model, b, self.device))
                sums[1] += count_trained(b["labels"])

        while self._out_of_memory(run, batch):
            if batch == 1:
                raise TuneDeskError("out of GPU memory while evaluating one validation example; use a shorter sequence length")
            batch //= 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        self.model.train()
        return sums[0] / max(1, sums[1])

    # -- saving ---------------------------------------------------------------------
    def _memory(self) -> int:
        if self.placement.device == "cuda":
            return int(torch.cuda.max_memory_allocated())
        import psutil

        return int(psutil.Process().memory_info().rss)

    def save_checkpoint(self) -> Path:
        """Adapter, optimizer, scheduler, RNG, data position and plan (engine/training/checkpoints.py)."""
        assert self.run is not None
        state = {"step": self.step, "epoch": self.pos.epoch, "index": self.pos.index, "group": self.group,
                 "micro_batch": self.plan.micro_batch, "grad_accum": self.plan.grad_accum,
                 "trained_tokens": self.trained_tokens, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}
        target = checkpoints.write(self.run.checkpoint_path(self.step), self.model, state, self.card.record())
        self.run.prune_checkpoints(self.cfg.train.keep_checkpoints)
        self.reporter.event("checkpoint", step=self.step, path=str(target))
        return target

    def _restore(self, checkpoint: Path) -> None:
        """A checkpoint's adapter, optimizer, scheduler, RNG and data position; the
        metrics logged after it are dropped, since those steps run again."""
        assert self.run is not None
        state = checkpoints.read(checkpoint, self.model, self.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.pos, self.group = state["step"], Position(state["epoch"], state["index"]), state["group"]
        self.trained_tokens = int(state.get("trained_tokens", 0))
        self.history = [r for r in self.run.metrics() if r.get("step", 0) <= self.step]
        self.run.rewrite_metrics(self.history)
        self.reporter.status(f"Resuming {self.run.path.name} from step {self.step} of {self.total_steps}")

    def save_adapter(self) -> Path:
        assert self.run is not None
        with atomic_dir(self.run.adapter_dir) as tmp:
            self.model.save_pretrained(tmp)
            write_json(tmp / "tunedesk.json", {"base_model": self.cfg.model.source, "step": self.step})
        return self.run.adapter_dir

    # -- the loop -------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        assert self.run is not None, "call setup() first"
        rep, run = self.reporter, self.run
        rep.event("started", run_dir=str(run.path), total_steps=self.total_steps, step=self.step)
        first_step = self.step
        if first_step == 0:
            first_eval = self.evaluate()
            if first_eval is not None:
                self._log({"step": 0, "eval_loss": first_eval})
        else:  # resumed: the run's first evaluation is in its history
            first_eval = next((h["eval_loss"] for h in self.history if "eval_loss" in h), None)
        start = last_checkpoint = time.monotonic()
        run.mark_running()
        self._tokens_done = 0
        status, error = "finished", None
        self._last_eval = first_eval
        try:
            status = self._steps(first_step, start, last_checkpoint)
        except FitError as e:
            status, error = "failed", str(e)
        duration = time.monotonic() - start
        if status == "stopped":
            rep.status(f"Stopped at step {self.step}; saving a checkpoint…")
            self.save_checkpoint()
        if status != "failed":
            self.save_adapter()
        summary = self._summary(status, error, first_eval, duration)
        run.write_summary(summary)
        run.clear_running()
        rep.event("finished", run_dir=str(run.path), status=status, summary=summary)
        if error:
            raise FitError(error)
        return summary

    def _steps(self, first_step: int, start: float, last_checkpoint: float) -> str:
        """Optimizer steps until the last one or a stop request; 'finished' or 'stopped'."""
        cfg, rep = self.cfg, self.reporter
        while self.step < self.total_steps:
            if rep.stop_requested():
                return "stopped"
            m = self.train_step()
            self._tokens_done += m["tokens"]
            self.trained_tokens += m["trained_tokens"]
            elapsed = time.monotonic() - start
            record = {"step": self.step, "epoch": round(self.epoch_float, 4), **m, "mem_bytes": self._memory()}
            if self.placement.device == "cuda":  # what the card really had to hold (benchmarks)
                record["mem_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
                self.card.watch(record["mem_reserved_bytes"])
            if self.step % cfg.train.eval_every == 0 or self.step == self.total_steps:
                self._last_eval = self.evaluate()
                if self._last_eval is not None:
                    record["eval_loss"] = self._last_eval
            self._log(record)
            rate = self._tokens_done / elapsed if elapsed > 0 else 0.0
            rep.event(
                "progress",
                step=self.step,
                total_steps=self.total_steps,
                epoch=self.epoch_float,
                tokens_per_s=rate,
                elapsed_s=elapsed,
                eta_s=elapsed / (self.step - first_step) * (self.total_steps - self.step),
            )
            due = self.step % cfg.train.checkpoint_every == 0 or time.monotonic() - last_checkpoint >= 60 * cfg.train.checkpoint_minutes
            if due and self.step < self.total_steps:
                self.save_checkpoint()
                last_checkpoint = time.monotonic()
        return "finished"

    def _summary(self, status: str, error: str | None, first_eval, duration: float) -> dict[str, Any]:
        losses = [h["loss"] for h in self.history if "loss" in h]
        fit = self.data.length_fit
        used = {e.row for e in self.data.train}
        summary = {
            "status": status,
            "error": error,
            "steps": self.step,
            "total_steps": self.total_steps,
            "epochs": round(self.epoch_float, 4),
            "train_loss": round(sum(losses[-5:]) / len(losses[-5:]), 6) if losses else None,
            "eval_loss": self._last_eval,
            "eval_loss_start": first_eval,
            "duration_s": round(duration, 2),
            "tokens_per_s": round(self._tokens_done / duration, 1) if duration > 0 else None,
            "trained_tokens": self.trained_tokens,
            "rows_total": self.data.rows,
            "rows_used": len(used),
            "rows_lost": len({e.row for e in self.data.whole_train} - used),
            "rows_truncated": (fit.context_cut + fit.answer_cut) if fit else 0,
            "seq_len": self.plan.seq_len,
            "length": fit.sentence() if fit else "",
            "device": self.placement.device,
            "dtype": str(self.placement.dtype).replace("torch.", ""),
            "quantization": self.placement.quantization,
            "oom_recoveries": self.card.oom_events,
            "model_folder": str(self.model_folder),
        }
        return summary

    def _log(self, record: dict[str, Any]) -> None:
        assert self.run is not None
        self.history.append(record)
        self.run.log_metrics(record)
        self.reporter.event("metrics", **record)


def train(cfg: RunConfig, reporter: Reporter | None = None) -> tuple[Path, dict[str, Any]]:
    """Run a whole training; returns the run folder and its summary."""
    trainer = Trainer(cfg, reporter)
    trainer.setup()
    summary = trainer.fit()
    assert trainer.run is not None
    return trainer.run.path, summary
