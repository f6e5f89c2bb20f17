"""The training recipe: setup -> fit (steps, evaluations, checkpoints) -> save.

One plain loop rather than HF's Trainer: the product needs to stop on request between
steps, report every step through the Reporter, checkpoint atomically, and (later)
recover from out-of-memory by re-splitting a step; all of that is simpler to own here.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import models
from .atomic import atomic_dir, write_json
from .config import RunConfig
from .data import PreparedData, prepare
from .data.batching import collate, collate_packed, epoch_order, eval_batches, pack_rows
from .errors import TuneDeskError
from .loading import Placement, add_lora, choose_placement, enable_checkpointing, load_model, load_tokenizer
from .loss import batch_loss_sum, count_trained, loss_sum
from .reporting import Reporter
from .runs import RunDir

STATE_FILE = "trainer_state.pt"


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


def _use_lean_memory(cfg) -> None:
    """Lean memory in the run's config: it has no LoRA dropout (engine/lean.py), and the
    saved config says so."""
    cfg.model.lean_memory, cfg.lora.dropout = True, 0.0


def make_optimizer(model, t) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "adamw_8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)


class Trainer:
    def __init__(self, cfg: RunConfig, reporter: Reporter | None = None) -> None:
        self.cfg = cfg.validate()
        self.reporter = reporter or Reporter()
        self.run: RunDir | None = None
        self.step = 0
        self.pos = Position()
        self.history: list[dict[str, Any]] = []
        self.group = 1  # length-grouping unit: the planned micro-batch, set in setup()
        self._order_cache: tuple[int, list[int]] = (-1, [])
        self.oom_events = 0

    @property
    def max_len(self) -> int | None:
        """Lowered only by out-of-memory recovery; kept in the config, so a resumed run
        (and its calibration) starts from it instead of running out of memory again."""
        return self.cfg.train.skip_longer_than

    @max_len.setter
    def max_len(self, value: int | None) -> None:
        self.cfg.train.skip_longer_than = value

    # -- setup ----------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, reporter: Reporter | None = None) -> "Trainer":
        """A trainer set up to continue `run_dir` from its last checkpoint, with its config."""
        run = RunDir.open(run_dir)
        if not run.checkpoints():
            raise TuneDeskError(f"{run.path}: no checkpoint to resume from")
        cfg, _ = run.read_config()
        trainer = cls(cfg, reporter)
        trainer.setup(resume=run)
        return trainer

    def setup(self, resume: RunDir | None = None) -> None:
        cfg, rep = self.cfg, self.reporter
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        rep.status("Preparing the model…")
        folder = models.resolve(
            cfg.model.source, allow_pickle=cfg.model.allow_pickle, revision=cfg.model.revision, status=rep.status
        )
        self.model_folder = folder
        self.tokenizer = load_tokenizer(folder, cfg.model)
        cuda = torch.cuda.is_available() and cfg.train.device != "cpu"

        rep.status(f"Reading {Path(cfg.data.path).name}…")
        self.data: PreparedData = prepare(cfg.data, self.tokenizer)
        self.plan = self._plan(folder, cuda)
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

        self.placement: Placement = choose_placement(cfg.model, cfg.train.device, rep.warning)
        rep.status(f"Loading {models.display_name(cfg.model.source)} on {self.placement.device.upper()}…")
        base = load_model(folder, cfg.model, self.placement, embedding_module=self.embedding_module)
        self.model = add_lora(base, cfg.lora, gradient_checkpointing=bool(cfg.model.gradient_checkpointing),
                              lean=bool(cfg.model.lean_memory))
        self.device = torch.device("cuda", torch.cuda.current_device()) if self.placement.device == "cuda" else torch.device("cpu")
        self.group = cfg.train.micro_batch  # length-grouping unit; fixed for the run

        self.optimizer = make_optimizer(self.model, cfg.train)
        # fp16 needs loss scaling; bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.placement.dtype == torch.float16)
        if self.placement.device == "cuda":
            self._calibrate()
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
        self.run.write_plan(self.plan)

    def _plan(self, folder: Path, cuda: bool) -> dict[str, Any]:
        """Fill every setting left to the planner (None) and drop rows longer than the plan."""
        from . import model_info, planner
        from .hardware import apply_simulated_cap, probe
        from .memory import GiB

        cfg, t, rep = self.cfg, self.cfg.train, self.reporter
        forced = planner.user_settings(cfg)
        effective = planner.effective_batch(cfg, cuda)
        info = self.info = model_info.from_folder(folder)
        budget = None
        if cuda:
            apply_simulated_cap()
            budget = planner.budget_for(t.vram_gb, probe()) or planner.budget_from_free(torch.cuda.mem_get_info()[0])
        p = planner.plan_run(cfg, info, budget_bytes=budget, lengths=self.data.lengths, bf16=cuda and torch.cuda.is_bf16_supported())
        if not p.fits:
            over = f"estimated {p.estimate_bytes / GiB:.1f} GiB against a budget of {p.budget_bytes / GiB:.1f} GiB"
            if not forced:
                raise TuneDeskError(f"this model does not fit the GPU ({over}). {p.suggestion}")
            rep.warning(f"your settings may not fit ({over}); if the GPU runs out of memory the step is retried smaller. {p.suggestion}")
        cfg.model.quantization = p.quantization
        cfg.model.gradient_checkpointing = p.gradient_checkpointing
        t.micro_batch = p.micro_batch
        t.grad_accum = t.grad_accum or math.ceil(effective / p.micro_batch)
        cfg.data.max_seq_len = p.max_seq_len
        t.optimizer = p.optimizer if cuda else "adamw"  # bitsandbytes' 8-bit states are CUDA only
        cfg.model.embeddings_on_cpu = bool(p.embeddings_on_cpu and cuda)
        if p.lean_memory and p.gradient_checkpointing:  # (lean memory acts through checkpointing)
            _use_lean_memory(cfg)
        else:
            cfg.model.lean_memory = False
        self.embedding_module = info.embedding_module
        if p.lora_r != cfg.lora.r:
            rep.warning(f"LoRA rank lowered from {cfg.lora.r} to {p.lora_r} to fit the card")
            cfg.lora.alpha = round(cfg.lora.alpha * p.lora_r / cfg.lora.r)  # same alpha / r scale
            cfg.lora.r = p.lora_r
        self._drop_longer_than(p.max_seq_len)
        if budget is not None:
            rep.status(
                f"Plan: {p.quantization if p.quantization != 'none' else 'unquantized'} weights, micro-batch {t.micro_batch} x "
                f"{t.grad_accum}, checkpointing {'on' if p.gradient_checkpointing else 'off'}, up to {p.max_seq_len} tokens, "
                f"{p.optimizer}{', lean memory' if p.lean_memory else ''}: "
                f"about {p.estimate_bytes / GiB:.1f} of {p.budget_bytes / GiB:.1f} GiB"
            )
        return {**p.to_dict(), "user_set": sorted(forced), "effective_batch": effective}

    def _drop_longer_than(self, limit: int) -> None:
        from .data.readers import RowProblem

        for split in ("train", "val"):
            rows = getattr(self.data, split)
            long = [e for e in rows if len(e) > limit]
            if long:
                setattr(self.data, split, [e for e in rows if len(e) <= limit])
                self.data.skipped += [
                    RowProblem(e.row, f"too long: {len(e)} tokens > {limit} (the plan's sequence length)", "too long")
                    for e in long
                ]
        if len(self.data.train) < 1:
            from .errors import DataError

            raise DataError(f"{Path(self.cfg.data.path).name}: no row fits in {limit} tokens")

    def _calibrate(self) -> None:
        """One forward/backward at the plan's largest shape, before the real run: the
        measured peak replaces the estimate, and a shape that does not fit the budget is
        made smaller now rather than at step 1. A measured peak over the budget counts
        as out of memory even when the card (or cap) had room: the real steps add
        optimizer states and fragmentation, and would fail on a later step."""
        from .memory import GiB

        t, rep = self.cfg.train, self.reporter
        vocab = self.model.get_input_embeddings().weight.shape[0]
        budget = self.plan.get("budget_bytes")
        forced = set(self.plan.get("user_set", ()))
        loaded = torch.cuda.memory_allocated()
        # Optimizer states are allocated at the first real step: add them.
        lora_states = sum(p.numel() for p in self.model.parameters() if p.requires_grad) * (2 if t.optimizer == "adamw_8bit" else 8)
        while True:
            torch.cuda.empty_cache()  # measure from what is really held, not from the loader's cache
            torch.cuda.reset_peak_memory_stats()
            if self._out_of_memory(self._probe_step, vocab):
                self._recover_from_oom()
                continue
            measured = torch.cuda.max_memory_reserved() + lora_states
            if budget and measured > budget:
                over = f"the largest step needs {measured / GiB:.2f} GiB, over the budget of {budget / GiB:.2f} GiB"
                if forced:  # the user's settings are kept; recovery acts if the card really runs out
                    rep.warning(f"Calibration: {over} with your settings")
                else:
                    self._recover_from_oom(f"Calibration: {over}")
                    continue
            break
        allocated = torch.cuda.max_memory_allocated() + lora_states
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()  # the steps' memory readings are their own, not the probe's
        self.plan["calibration"] = {
            "measured_reserved": measured,
            "measured_allocated": allocated,
            "loaded_allocated": loaded,
            "estimate": self.plan["estimate_bytes"],
            "micro_batch": t.micro_batch,
            "gradient_checkpointing": self.cfg.model.gradient_checkpointing,
            "max_len": self.max_len,
        }
        rep.status(
            f"Calibrated: the largest step takes {measured / GiB:.2f} GiB (estimated {self.plan['estimate_bytes'] / GiB:.2f} GiB; "
            f"the loaded model holds {loaded / GiB:.2f} GiB)"
        )

    def _total_steps(self) -> int:
        t = self.cfg.train
        if t.max_steps:
            return t.max_steps
        return max(1, math.ceil(t.epochs * len(self.data.train) / (t.micro_batch * t.grad_accum)))

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
        take = order[self.pos.index : self.pos.index + self.cfg.train.micro_batch]
        self.pos.index += len(take)
        if self.max_len is not None:  # shortened after an out-of-memory error
            take = [i for i in take if len(self.data.train[i]) <= self.max_len] or take[:0]
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
            self._recover_from_oom()

    def _lean_fits_ram(self) -> bool:
        """Would lean memory's copy of the activations fit the RAM the planner allows it?"""
        from .memory import StepShape, offloaded_bytes
        from .planner import LEAN_RAM

        shape = StepShape(micro_batch=1, seq_len=self._longest(), gradient_checkpointing=True, lean=True)
        return offloaded_bytes(self.info, shape) <= LEAN_RAM

    def _longest(self) -> int:
        """The most tokens one example (or one packed row) may have now."""
        return min(self.max_len or self.cfg.data.max_seq_len, self.cfg.data.max_seq_len)

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

    def _probe_step(self, vocab: int) -> None:
        t = self.cfg.train
        seq = self._longest()
        # Train mode, as in the real step: a freshly loaded model is in eval mode, where
        # gradient checkpointing does not act and every layer's activations are kept.
        self.model.train()
        try:
            ids = torch.randint(0, vocab, (t.micro_batch, seq), device=self.device)
            with self._autocast():
                loss = loss_sum(self.model, ids, torch.ones_like(ids), ids) / ids.numel()
            loss.backward()
        finally:
            self.optimizer.zero_grad(set_to_none=True)

    def _train_step(self) -> dict[str, Any]:
        t = self.cfg.train
        self.model.train()
        idx = [self._next_batch() for _ in range(t.grad_accum)]
        batches = self._packed(idx) if t.packing else [
            collate([self.data.train[i] for i in b], self.tokenizer.pad_token_id) for b in idx if b
        ]
        n_trained = sum(count_trained(b["labels"]) for b in batches)
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
        """The step's examples packed into rows of up to the sequence length, in
        micro-batches of micro_batch rows: the planned shape, with less padding."""
        t = self.cfg.train
        examples = [self.data.train[i] for b in idx for i in b]
        rows = [[examples[i] for i in r] for r in pack_rows([len(e) for e in examples], self._longest())]
        return [collate_packed(rows[k : k + t.micro_batch], self.tokenizer.pad_token_id) for k in range(0, len(rows), t.micro_batch)]

    def _recover_from_oom(self, cause: str | None = None) -> None:
        """Free what a failed step held (calibration calls this without one), then make
        the step smaller, same effective batch.

        Order of retreat: halve the micro-batch (doubling accumulation); at micro-batch 1
        turn gradient checkpointing on, then lean memory; then train only on shorter
        examples.
        """
        import gc

        t = self.cfg.train
        cause = cause or f"Out of GPU memory at step {self.step + 1}"
        self.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        effective = t.micro_batch * t.grad_accum
        if t.micro_batch > 1:
            t.micro_batch //= 2
            t.grad_accum = math.ceil(effective / t.micro_batch)
            text = (f"{cause}: micro-batch lowered to {t.micro_batch} with "
                    f"{t.grad_accum} accumulation steps (same effective batch of {t.micro_batch * t.grad_accum}); retrying the step")
        elif not self.cfg.model.gradient_checkpointing:
            self.cfg.model.gradient_checkpointing = True
            enable_checkpointing(self.model)
            text = f"{cause} at micro-batch 1: gradient checkpointing turned on; retrying the step"
        elif not self.cfg.model.lean_memory and self._lean_fits_ram():
            from .lean import make_lean

            _use_lean_memory(self.cfg)
            make_lean(self.model)
            text = f"{cause} at micro-batch 1: lean memory turned on (activations in RAM, no LoRA dropout); retrying the step"
        else:
            longest = max(len(e) for e in self.data.train)
            current = self.max_len or longest
            new = int(current * 0.75)
            if new < 64:
                raise TuneDeskError(
                    "out of GPU memory even at micro-batch 1 with gradient checkpointing, lean memory and short examples; "
                    "use 4-bit quantization or a smaller model"
                )
            self.max_len = new
            kept = sum(1 for e in self.data.train if len(e) <= new)
            text = (f"{cause}: training only on examples up to {new} tokens from now on "
                    f"({kept} of {len(self.data.train)} rows); retrying the step")
        self.oom_events += 1
        self.reporter.warning(text)
        self.reporter.event("oom_recovery", text=text, step=self.step + 1, micro_batch=t.micro_batch,
                            grad_accum=t.grad_accum, gradient_checkpointing=self.cfg.model.gradient_checkpointing,
                            lean_memory=bool(self.cfg.model.lean_memory), max_len=self.max_len)
        if self.run is not None:
            self.run.write_config(self.cfg, resolved_model_folder=str(self.model_folder))

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Token-weighted mean loss over the validation split (halving its batch on OOM)."""
        if not self.data.val:
            return None
        self.model.eval()
        batch = self.cfg.train.micro_batch
        sums: list[float] = [0.0, 0]

        def run(batch: int) -> None:
            sums[:] = [0.0, 0]
            for idx in eval_batches(self.data.val, batch):
                b = collate([self.data.val[i] for i in idx], self.tokenizer.pad_token_id)
                with self._autocast():
                    ids, mask = b["input_ids"].to(self.device), b["attention_mask"].to(self.device)
                    sums[0] += float(loss_sum(self.model, ids, mask, b["labels"]))
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
        """Adapter + optimizer, scheduler, RNG and data position, written atomically."""
        assert self.run is not None
        target = self.run.checkpoint_path(self.step)
        with atomic_dir(target) as tmp:
            self.model.save_pretrained(tmp)
            torch.save(
                {
                    "step": self.step,
                    "epoch": self.pos.epoch,
                    "index": self.pos.index,
                    "group": self.group,
                    "micro_batch": self.cfg.train.micro_batch,
                    "grad_accum": self.cfg.train.grad_accum,
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict(),
                    "rng_torch": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "rng_python": list(random.getstate()[1]),
                },
                tmp / STATE_FILE,
            )
        self.run.prune_checkpoints(self.cfg.train.keep_checkpoints)
        self.reporter.event("checkpoint", step=self.step, path=str(target))
        return target

    def _restore(self, checkpoint: Path) -> None:
        """Adapter, optimizer, scheduler, RNG and data position of a checkpoint; the
        metrics logged after it are dropped, since those steps run again."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        assert self.run is not None
        set_peft_model_state_dict(self.model, load_file(checkpoint / "adapter_model.safetensors", device=str(self.device)))
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)  # our own file, tensors only
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        random.setstate((3, tuple(state["rng_python"]), None))
        self.step, self.pos, self.group = state["step"], Position(state["epoch"], state["index"]), state["group"]
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
        cfg, rep, run = self.cfg, self.reporter, self.run
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
        tokens_done = 0
        status = "finished"
        last_eval = first_eval
        while self.step < self.total_steps:
            if rep.stop_requested():
                status = "stopped"
                break
            m = self.train_step()
            tokens_done += m["tokens"]
            elapsed = time.monotonic() - start
            record = {"step": self.step, "epoch": round(self.epoch_float, 4), **m, "mem_bytes": self._memory()}
            if self.placement.device == "cuda":  # what the card really had to hold (benchmarks)
                record["mem_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
            if self.step % cfg.train.eval_every == 0 or self.step == self.total_steps:
                last_eval = self.evaluate()
                if last_eval is not None:
                    record["eval_loss"] = last_eval
            self._log(record)
            rate = tokens_done / elapsed if elapsed > 0 else 0.0
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
        duration = time.monotonic() - start
        if status == "stopped":
            rep.status(f"Stopped at step {self.step}; saving a checkpoint…")
            self.save_checkpoint()
        self.save_adapter()
        losses = [h["loss"] for h in self.history if "loss" in h]
        summary = {
            "status": status,
            "steps": self.step,
            "total_steps": self.total_steps,
            "epochs": round(self.epoch_float, 4),
            "train_loss": round(sum(losses[-5:]) / len(losses[-5:]), 6) if losses else None,
            "eval_loss": last_eval,
            "eval_loss_start": first_eval,
            "duration_s": round(duration, 2),
            "tokens_per_s": round(tokens_done / duration, 1) if duration > 0 else None,
            "device": self.placement.device,
            "dtype": str(self.placement.dtype).replace("torch.", ""),
            "quantization": self.placement.quantization,
            "oom_recoveries": self.oom_events,
            "model_folder": str(self.model_folder),
        }
        run.write_summary(summary)
        run.clear_running()
        rep.event("finished", run_dir=str(run.path), status=status, summary=summary)
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
