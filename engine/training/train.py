"""The training recipe: setup -> fit (steps, evaluations, checkpoints) -> save.

One plain loop rather than HF's Trainer: the product needs to stop on request between
steps, report every step through the Reporter, checkpoint atomically, and recover from
out-of-memory by re-splitting a step; all of that is simpler to own here.

The request (RunConfig) is read, never written: what the run uses is `self.plan`, the
planner's frozen Plan, replaced (not edited) by calibration and out-of-memory recovery.
config.json keeps the request, plan.json the plan with its calibration and every
recovery, and each checkpoint the plan it was taken under, so a resumed run continues
that plan and "Train again" plans anew from the request.

Under torchrun the same loop runs in every process (engine/training/distributed.py):
rank 0 writes the run folder and reports. About 340 lines: setup and the loop, each read
top to bottom; the data stream, the optimizer, the passes, the checkpoints and the
summary live in the modules beside it.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path
from typing import Any

import torch

from .. import models
from ..config import LoraConfig, RunConfig
from ..data import PreparedData, prepare
from ..data.prepare import source_name
from ..errors import FitError, TuneDeskError
from ..fit.card_fit import CardFit
from ..fit.plan import Plan
from ..hardware import keep_allocations_compact, keep_ram_compact
from ..models.loading import (
    Placement,
    add_lora,
    choose_placement,
    load_model,
    load_tokenizer,
)
from ..reporting import Reporter
from ..runs import RunDir
from . import checkpoints, objectives, preflight, sharding, steps
from .distributed import launched_ranks, stop_requested_from_outside
from .guards import Guards
from .optim import Optimization
from .stream import DataStream
from .summary import summarize


class Trainer:
    def __init__(self, cfg: RunConfig, reporter: Reporter | None = None) -> None:
        self.cfg = cfg.validate()
        self.reporter = reporter or Reporter()
        self.run: RunDir | None = None
        self.card: CardFit | None = None  # the plan and its record: set up in setup()
        self.step = 0
        self.history: list[dict[str, Any]] = []
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
        cfg = self.cfg
        cuda = torch.cuda.is_available() and cfg.train.device != "cpu"
        self.ranks = launched_ranks(cuda)  # one process per GPU under torchrun; else a single rank
        if not self.ranks.main:
            self.reporter = Reporter()  # rank 0 reports for the run
        rep = self.reporter
        keep_allocations_compact()
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        if not cuda:
            keep_ram_compact()
        with self.ranks.main_first():
            rep.status("Preparing the model…")
            folder = models.resolve(cfg.model.source, allow_pickle=cfg.model.allow_pickle, revision=cfg.model.revision,
                                    status=rep.status)
            self.model_folder = folder
            self.tokenizer = load_tokenizer(folder, cfg.model)
            rep.status(f"Reading {Path(cfg.data.path).name}…")
            self.data: PreparedData = prepare(cfg.data, self.tokenizer)
        # DPO / ORPO need pairs; a preference file under SFT trains on its chosen answers
        preflight.check_method(cfg.method.name, self.data, source_name(cfg.data), rep)
        self.data = objectives.method_data(cfg, self.data, self.tokenizer)  # GRPO: prompts and references
        from ..models import model_info

        self.info = model_info.from_folder(folder)
        preflight.check_vocabulary(self.data, self.info, models.display_name(cfg.model.source))
        self.card = CardFit(cfg, self.info, self.data, rep, on_change=self._write_plan)
        self.card.agree, self.card.share = self.ranks.any, self.ranks.share
        self.card.choose(cuda, resume, processes=self.ranks.world)
        preflight.check_data(self.data, cfg.data.val_share, rep)

        p = self.plan
        model_cfg = cfg.model.as_planned(p.to_dict())
        self.placement: Placement = choose_placement(model_cfg, cfg.train.device, rep.warning)
        rep.status(f"Loading {models.display_name(cfg.model.source)} on {self.placement.device.upper()}…")
        base = load_model(folder, model_cfg, self.placement, embedding_module=self.info.embedding_module, sharded=p.sharded)
        lora = LoraConfig(r=p.lora_r, alpha=p.lora_alpha, dropout=p.lora_dropout, target_modules=p.lora_targets)
        self.model = add_lora(base, lora, gradient_checkpointing=p.gradient_checkpointing, lean=p.lean_memory)
        if p.sharded and self.ranks.spread:  # the model does not fit one card: 1/N of it on each (FSDP2)
            self.ranks = sharding.shard(self.model, self.ranks, cuda=self.placement.device == "cuda")
            self.ranks.context = lambda: (self.run.path if self.run else None, self.plan.to_dict(), self.step)
        self.device = torch.device("cuda", torch.cuda.current_device()) if self.placement.device == "cuda" else torch.device("cpu")
        self.objective = objectives.make(self)  # what a step computes: the run's method
        self.guards = Guards(self)
        self.guards.mix_replay(resume)  # the base model's own answers join the rows, before their order is drawn
        # Length grouping in units of the planned micro-batch, fixed for the run.
        self.stream = DataStream(self.data.train, p.micro_batch, cfg.train.seed)
        # The learning rate is the plan's: the request's, or sized to the data (engine/fit/schedule.py).
        self.optim = Optimization(self.model, dataclasses.replace(cfg.train, lr=p.lr), p.optimizer,
                                  fp16=self.placement.dtype == torch.float16)
        self.ranks.same_params(self.optim.params)
        calibrate = self.card.calibrate_gpu if self.placement.device == "cuda" else self.card.calibrate_ram
        calibrate(self.model, self.probe)
        self.total_steps = self._total_steps()
        self.optim.schedule(self.total_steps, cfg.train.warmup_ratio)

        if resume is not None:
            self.run = resume
            self._restore(resume.checkpoints()[-1])
            self._write_plan()  # the plan it continues, on this machine's number of processes
            return
        if self.ranks.main:
            self.run = RunDir.create(cfg, model_name=models.display_name(cfg.model.source))
            self.run.write_config(cfg, resolved_model_folder=str(folder))
            self.run.write_data_report(self.data.report())
            self.guards.save_replay(self.run)
        self.run = RunDir.open(self.ranks.share(str(self.run.path) if self.run else None))
        self._write_plan()
        if self.ranks.lockstep:  # sharded: a restart after out of memory (sharding.ran_out) always has a checkpoint
            self.save_checkpoint()

    def _write_plan(self) -> None:
        if self.run is not None and self.ranks.main:
            self.run.write_plan(self.card.record())

    def _total_steps(self) -> int:
        t, p = self.cfg.train, self.plan
        if t.max_steps:
            return t.max_steps
        return max(1, math.ceil(p.epochs * len(self.data.train) / p.examples_per_step))

    # -- one optimizer step ---------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=self.placement.dtype, enabled=self.placement.autocast)

    def train_step(self) -> dict[str, Any]:
        """One optimizer step. Out of memory on any rank re-runs the same step smaller, on
        every rank (engine/training/distributed.py: the ranks agree before they exchange)."""
        start = self.stream.mark()
        while True:
            p = self.plan
            idx = [self.stream.next_batch(p.micro_batch) for _ in range(p.grad_accum * self.ranks.world)]
            batches, trained, tokens = self.objective.step_batches(idx)
            local: dict[str, float] = {}
            failed = steps.out_of_memory(lambda: local.update(self.objective.accumulate(batches, trained)))
            if failed and self.ranks.lockstep:  # the others wait inside a collective: no agreement is possible
                self.ranks.out_of_memory()
            if not self.ranks.any(failed):
                self.ranks.sum_grads(self.optim.params)
                lr, grad_norm = self.optim.step()
                self.step += 1
                summed = dict(zip(local, self.ranks.total(*local.values())))
                # An objective's own token counts (GRPO's, known once its answers are sampled) win.
                return {"tokens": tokens, "trained_tokens": trained, **summed, "lr": lr, "grad_norm": grad_norm}
            del batches
            self.stream.rewind(start)  # the same examples again, split finer
            self._recover(f"Out of GPU memory at step {self.step + 1}")

    def _recover(self, context: str) -> None:
        """Free what the failed step held, then the next smaller plan (engine/fit/card_fit.py).
        Runs after the exception handler has exited: inside it, the traceback still holds
        every activation of the failed step."""
        self.optim.zero()
        old = self.card.recover("out of memory", context, self.model, self.step + 1)
        if self.plan.seq_len != old.seq_len:
            self.data.train = self.data.train + self.guards.replay_rows  # fitting the rows anew made them from the file's
            self.stream.reshuffled(self.data.train)

    def probe(self) -> bool:
        """Calibration's step at the plan's largest shape; False if it ran out of memory."""
        failed = steps.out_of_memory(self.objective.probe, self.plan.micro_batch, self.plan.seq_len)
        if failed and self.ranks.lockstep:  # sharded: every rank stops, the launcher restarts smaller
            self.ranks.out_of_memory()
        return not failed

    def evaluate(self) -> dict[str, float]:
        """The method's validation metrics ({} without validation rows); eval_loss among them."""
        return self.objective.evaluate() or {}

    # -- saving ---------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Adapter, optimizer, scheduler, RNG, data position and plan (engine/training/checkpoints.py)."""
        assert self.run is not None
        # A sharded run's ranks gather the adapter and optimizer states whole, together.
        adapter, optimizer = self.ranks.adapter_state(self.model), self.ranks.optimizer_state(self.model, self.optim.optimizer)
        if not self.ranks.main:  # rank 0 writes for the run: every rank holds the same weights and states
            return self.run.checkpoint_path(self.step)
        state = {"step": self.step, **self.stream.state(), **self.guards.keeper.state(), "micro_batch": self.plan.micro_batch,
                 "grad_accum": self.plan.grad_accum, "trained_tokens": self.trained_tokens, **self.objective.state(),
                 **self.optim.state_dict(), "optimizer": optimizer}
        target = checkpoints.write(self.run.checkpoint_path(self.step), self.model, state, self.card.record(), adapter)
        self.run.prune_checkpoints(self.cfg.train.keep_checkpoints)
        self.reporter.event("checkpoint", step=self.step, path=str(target))
        return target

    def _restore(self, checkpoint: Path) -> None:
        """A checkpoint's adapter, optimizer, scheduler, RNG and data position; the
        metrics logged after it are dropped, since those steps run again."""
        assert self.run is not None
        state = checkpoints.read(checkpoint, self.model, self.device, self.ranks.load_adapter)
        self.optim.load_state_dict(state, lambda s: self.ranks.load_optimizer(self.model, self.optim.optimizer, s))
        self.stream.load(state)
        self.guards.keeper.load(state)
        self.objective.load(state)
        self.step = state["step"]
        self.trained_tokens = int(state.get("trained_tokens", 0))
        self.history = [r for r in self.run.metrics() if r.get("step", 0) <= self.step]
        if self.ranks.main:
            self.run.rewrite_metrics(self.history)
        self.reporter.status(f"Resuming {self.run.path.name} from step {self.step} of {self.total_steps}")

    def save_adapter(self, step: int | None = None) -> Path:
        """The run's adapter: the model's weights now, from `step` (the best evaluation's, once restored)."""
        assert self.run is not None
        weights = self.ranks.adapter_state(self.model)  # gathered by every rank of a sharded run
        if not self.ranks.main:
            return self.run.adapter_dir
        return self.run.write_adapter(self.model, self.cfg.model.source, self.step if step is None else step, state_dict=weights)

    # -- the loop -------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        assert self.run is not None, "call setup() first"
        rep, run = self.reporter, self.run
        rep.event("started", run_dir=str(run.path), total_steps=self.total_steps, step=self.step)
        first_step = self.step
        if first_step == 0:
            first = self.evaluate()
            first_eval = first.get("eval_loss")
            start = {"step": 0, "general_loss": self.guards.general_loss(), **first}
            if first_eval is not None:
                self.guards.evaluated(0, first_eval)
            self._log(start)
            self.guards.start(run)
        else:  # resumed: the run's first evaluation is in its history
            first_eval = next((h["eval_loss"] for h in self.history if "eval_loss" in h), None)
        start = last_checkpoint = time.monotonic()
        if self.ranks.main:
            run.mark_running()
        self.tokens_done = 0
        status, error = "finished", None
        self.last_eval = first_eval
        try:
            status = self._steps(first_step, start, last_checkpoint)
        except FitError as e:
            status, error = "failed", str(e)
        duration = time.monotonic() - start
        if status == "stopped":
            rep.status(f"Stopped at step {self.step}; saving a checkpoint…")
            self.save_checkpoint()
        if status != "failed":
            # The run's adapter is the best evaluation's; the last step's goes to last/
            self.save_adapter(self.guards.restore_best())
            if status == "finished":
                self.guards.finish(run)
        summary = {**summarize(self, status, error, first_eval, duration), **self.objective.summary()}
        if self.ranks.main:
            run.write_summary(summary)
            run.clear_running()
            self.guards.report(summary)
            self.objective.report(summary)
        self.ranks.close()  # the run is written: the processes leave their group together
        rep.event("finished", run_dir=str(run.path), status=status, summary=summary)
        if error:
            raise FitError(error)
        return summary

    def _steps(self, first_step: int, start: float, last_checkpoint: float) -> str:
        """Optimizer steps until the last one or a stop request; 'finished' or 'stopped'."""
        cfg, rep = self.cfg, self.reporter
        while self.step < self.total_steps:
            if self.ranks.any(rep.stop_requested() or self.run.stop_requested() or stop_requested_from_outside()):
                return "stopped"
            m = self.train_step()
            self.tokens_done += m["tokens"]
            self.trained_tokens += m["trained_tokens"]
            elapsed = time.monotonic() - start
            record = {"step": self.step, "epoch": round(self.stream.epoch_float, 4), **m, "mem_bytes": steps.memory_in_use(self.placement.device)}
            if self.placement.device == "cuda":  # what the card really had to hold (benchmarks)
                record["mem_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
                self.card.watch(record["mem_reserved_bytes"])
            evaluating = self.step % self.plan.eval_every == 0 or self.step == self.total_steps
            if evaluating:
                evaluation = self.evaluate()
                record.update(evaluation)
                self.last_eval = evaluation.get("eval_loss")
                record["general_loss"] = self.guards.last_general = self.guards.general_loss()
                self.guards.evaluated(self.step, self.last_eval)
            self._log(record)
            rate = self.tokens_done / elapsed if elapsed > 0 else 0.0
            rep.event(
                "progress",
                step=self.step,
                total_steps=self.total_steps,
                epoch=self.stream.epoch_float,
                tokens_per_s=rate,
                elapsed_s=elapsed,
                eta_s=elapsed / (self.step - first_step) * (self.total_steps - self.step),
            )
            due = self.step % cfg.train.checkpoint_every == 0 or time.monotonic() - last_checkpoint >= 60 * cfg.train.checkpoint_minutes
            if due and self.step < self.total_steps:
                self.save_checkpoint()
                last_checkpoint = time.monotonic()
            if evaluating and self.guards.keeper.should_stop:
                k = self.guards.keeper
                rep.status(f"Stopping early at step {self.step}: the validation loss has not improved for {k.patience} "
                           f"evaluations; the adapter is step {k.best_step}'s (validation loss {k.best_loss:.4f})")
                return "finished"
        return "finished"

    def _log(self, record: dict[str, Any]) -> None:
        assert self.run is not None
        self.history.append(record)
        if self.ranks.main:
            self.run.log_metrics(record)
        self.reporter.event("metrics", **record)


def train(cfg: RunConfig, reporter: Reporter | None = None) -> tuple[Path, dict[str, Any]]:
    """Run a whole training; returns the run folder and its summary."""
    trainer = Trainer(cfg, reporter)
    trainer.setup()
    summary = trainer.fit()
    assert trainer.run is not None
    return trainer.run.path, summary
