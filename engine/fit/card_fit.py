"""Fitting the card: the plan a run uses, and keeping it true to the card as the run goes.

`CardFit` owns the resolved Plan and its record (the planner's first plan, calibration,
every recovery, the first steps' reserved memory): what plan.json and each checkpoint
keep. It chooses the plan (or takes the checkpoint's), fits the rows to the plan's
length, calibrates with one measured step at the largest shape, and on out of memory
moves to the next smaller plan: levers that lose no data first. The training loop
(engine/training/train.py) asks it; it never runs a training step itself.
"""

from __future__ import annotations

import gc
import json
from typing import Any, Callable

import torch

from ..errors import FitError, TuneDeskError
from . import planner, sharding
from .memory import GiB, ram_bytes
from .plan import Plan, accumulation
from .planner import CPU_HEADROOM, MAX_LOST_SHARE

PLAN_FILE = "plan.json"  # in the run folder and in each checkpoint: the plan the run had reached there
GROWTH_ALLOWANCE = 0.02  # of the cap: what the steps may add over calibration (optimizer, eval)
CPU_CALIBRATE_SHARE = 0.5  # a CPU plan estimated past this share of its RAM budget is measured first
WATCHED_STEPS = 5
MIN_COMPLETION = 32  # GRPO: shorter sampled answers than this leave a reasoning model no room to answer  # reserved memory of the first steps is kept in plan.json, against calibration


class CardFit:
    def __init__(self, cfg, info, data, reporter, on_change: Callable[[], None] = lambda: None) -> None:
        self.cfg, self.info, self.data, self.reporter, self.on_change = cfg, info, data, reporter, on_change
        self.plan: Plan | None = None
        self.planned: dict[str, Any] = {}  # the planner's first plan, before calibration and recovery
        self.calibration: dict[str, Any] = {}
        self.recoveries: list[dict[str, Any]] = []
        self.steps_reserved: list[int] = []
        # The ranks' shared verdict on a flag (engine/training/distributed.py): several
        # processes must shrink together or not at all. One process: the flag itself.
        self.agree: Callable[[bool], bool] = lambda flag: flag
        # …and rank 0's plan for all of them (each probes the cards a moment apart).
        self.share: Callable[[Plan], Plan] = lambda plan: plan

    @property
    def oom_events(self) -> int:
        return sum(1 for r in self.recoveries if r["cause"] == "out of memory")

    def record(self) -> dict[str, Any]:
        """What plan.json holds."""
        fit = self.data.length_fit
        return {**self.plan.to_dict(), "headline": self.plan.headline(), "planned": self.planned, "calibration": self.calibration,
                "recoveries": self.recoveries, "steps_reserved": self.steps_reserved,
                "length": fit.to_dict() if fit else None}

    # -- the plan -------------------------------------------------------------------------
    def choose(self, cuda: bool, checkpoint=None, processes: int = 1) -> Plan:
        """The checkpoint's plan when resuming (a folder with plan.json), else the
        planner's for the request on this machine, spread over the processes this run
        really has (a checkpoint resumes on another number of GPUs too); then the rows
        are fitted to it."""
        plan = self.share((self._saved(checkpoint) if checkpoint is not None else None) or self._new(cuda))
        self.plan = sharding.spread(plan, processes, self.info)
        self.planned = self.planned or self.plan.to_dict()
        failed = sharding.failed_plan()  # restarted after a rank of a sharded run ran out of memory
        if failed is not None:
            plan, note = failed
            self.plan = sharding.spread(plan, processes, self.info)
            self.recover("out of memory", f"Rank {note['rank']} ran out of GPU memory at step {note['step'] + 1} of the "
                                          "sharded run, which restarted from its last checkpoint", None, note["step"] + 1)
        self.fit_rows(self.plan.seq_len)
        return self.plan

    def _new(self, cuda: bool) -> Plan:
        """Refused in plain words when nothing fits (on the CPU even with the user's own
        settings: nothing catches a RAM overrun, the computer swaps or freezes)."""
        from ..hardware import apply_simulated_cap, probe

        if cuda:
            apply_simulated_cap()
        hw = probe()
        free = int(torch.cuda.mem_get_info()[0]) if cuda and hw.gpu is None else None
        target = planner.target_for(self.cfg, hw, cuda=cuda, cuda_free_bytes=free)
        p = sharding.resolve(self.cfg, self.info, target, **self.data.plan_inputs())
        if not p.fits:
            over = (f"estimated {p.estimate_bytes / GiB:.1f} GiB against a budget of {p.budget_bytes / GiB:.1f} GiB"
                    if p.device == "cuda" else
                    f"estimated {p.ram_estimate_bytes / GiB:.1f} GiB of RAM against {p.ram_budget_bytes / GiB:.1f} GiB free for it")
            if not p.user_set or p.device == "cpu":
                raise TuneDeskError(f"this does not fit ({over}). {p.suggestion}")
            self.reporter.warning(f"your settings may not fit ({over}); if the GPU runs out of memory the step is retried "
                                  f"smaller. {p.suggestion}")
        if self.cfg.lora.r and p.lora_r != self.cfg.lora.r:
            self.reporter.warning(f"LoRA rank lowered from {self.cfg.lora.r} to {p.lora_r} to fit the card")
        asked = self.cfg.train.effective_batch
        if asked and p.effective_batch < asked:
            self.reporter.warning(f"effective batch lowered from {asked} to {p.effective_batch}: the file has only "
                                  f"{len(self.data.whole_train)} training rows, and every epoch must be a step")
        if p.data_warning:
            self.reporter.warning(p.data_warning)
        self.reporter.status(f"Plan: {p.headline()}")
        return p

    def _saved(self, run) -> Plan | None:
        """The plan the last checkpoint was taken under (runs from before plans were kept
        per checkpoint: the run's plan.json; older still: planned anew)."""
        for path in (run.checkpoints()[-1] / PLAN_FILE, run.path / PLAN_FILE):
            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            if "seq_len" in saved:
                self.planned = saved.get("planned") or {}
                self.recoveries = list(saved.get("recoveries") or [])
                plan = Plan.from_dict(saved)
                self.reporter.status("Continuing the run's plan: " + plan.headline())
                return plan
        return None

    # -- rows ---------------------------------------------------------------------------
    def fit_rows(self, limit: int) -> None:
        """Fit the rows to `limit` tokens; stop before training if that would lose too much.
        GRPO's rows are prompts: they get what the sampled answer leaves of the length."""
        fit = self.data.fit_length(limit - self.plan.completion_tokens, self.plan.long_rows)
        if fit.sentence():
            self.reporter.warning(fit.sentence())
        if not self.data.train:
            raise FitError(self.too_long(limit, "no row is left to train on"))
        lost = fit.lost_trained_share()
        context = self.info.context_length
        if context and limit >= context:  # the model's own limit, not the card's: nothing else would hold them
            if lost > 0:
                self.reporter.warning(f"{fit.over} row(s) are longer than this model's context of {context:,} tokens and "
                                      f"were truncated to it: {lost:.1%} of the trained tokens are left out")
            return
        rows_kept = len({e.row for e in self.data.train}) / max(1, len({e.row for e in self.data.whole_train}))
        if lost > MAX_LOST_SHARE or rows_kept < 1 - MAX_LOST_SHARE:
            raise FitError(self.too_long(limit, f"{lost:.0%} of the trained tokens and {fit.skipped} row(s) would be lost"))

    def too_long(self, limit: int, what: str) -> str:
        """The one sentence of a run that cannot keep its rows: the figures and the options."""
        longest = max((getattr(e, "longest", len(e)) for e in self.data.whole_train), default=0)  # a pair: its longer side
        where = "this card" if self.plan is not None and self.plan.device == "cuda" else "this computer's memory"
        return (f"at most {limit:,} tokens per row fit {where}, and the longest row has {longest:,}: {what}. "
                "Options: shorter rows (or a shorter sequence length), 4-bit weights, a smaller model, or a bigger card.")

    # -- calibration ------------------------------------------------------------------------
    def calibrate_gpu(self, model, probe: Callable[[], bool]) -> None:
        """One forward/backward at the plan's largest shape (`probe`; False when it ran
        out of memory), before the real run: the measured peak replaces the estimate,
        and a shape past the card's cap is made smaller now rather than at step 1. A
        peak between the budget (the card less 5% headroom) and the cap is not out of
        memory; the steps may add GROWTH_ALLOWANCE to it (optimizer states are counted
        in; compact allocations keep the rest)."""
        p = self.plan
        cap = p.cap_bytes or p.budget_bytes
        room = cap * (1 - GROWTH_ALLOWANCE)
        loaded = torch.cuda.memory_allocated()
        # Optimizer states are allocated at the first real step: add them.
        states = sum(q.numel() for q in model.parameters() if q.requires_grad) * (2 if p.optimizer == "adamw_8bit" else 8)
        attempts = []  # every shape measured, for plan.json: how the estimate compared at each
        while True:
            torch.cuda.empty_cache()  # measure from what is really held, not from the loader's cache
            torch.cuda.reset_peak_memory_stats()
            ok = not self.agree(not probe())
            measured = torch.cuda.max_memory_reserved() + states
            attempts.append({"micro_batch": self.plan.micro_batch, "seq_len": self.plan.seq_len, "ok": ok,
                             "estimate": self.plan.estimate_bytes, "reserved": int(measured),
                             "allocated": int(torch.cuda.max_memory_allocated() + states)})
            if not ok:
                self.recover("out of memory", "Calibration ran out of GPU memory", model)
                continue
            if self.agree(measured > room):
                over = f"the largest step needs {measured / GiB:.2f} GiB, over the {room / GiB:.2f} GiB the card can hold"
                if self.plan.user_set:  # the user's settings are kept; recovery acts if the card really runs out
                    self.reporter.warning(f"Calibration: {over} with your settings")
                else:
                    self.recover("calibration", f"Calibration: {over}", model)
                    continue
            break
        allocated = torch.cuda.max_memory_allocated() + states
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()  # the steps' memory readings are their own, not the probe's
        self.calibration = {"measured_reserved": int(measured), "measured_allocated": int(allocated),
                            "loaded_allocated": int(loaded), "estimate": self.plan.estimate_bytes, "cap_bytes": int(cap),
                            "promised_bytes": int(room), "micro_batch": self.plan.micro_batch, "seq_len": self.plan.seq_len,
                            "attempts": attempts}
        self.reporter.status(
            f"Calibrated: the largest step takes {measured / GiB:.2f} GiB of {cap / GiB:.2f} GiB (estimated "
            f"{self.plan.estimate_bytes / GiB:.2f} GiB; the loaded model holds {loaded / GiB:.2f} GiB)")

    def calibrate_ram(self, model, probe: Callable[[], bool]) -> None:
        """The CPU's calibration: one step at the largest shape, its peak resident memory
        against the RAM this run may use (less CPU_HEADROOM for the steps' growth); over
        it, the same ladder as on a GPU. Only near
        the edge (a CPU step takes seconds to minutes), and only where the OS can measure
        a peak (Linux); elsewhere the estimate stands."""
        from ..hardware import peak_rss, reset_peak_rss

        p = self.plan
        if p.ram_estimate_bytes < CPU_CALIBRATE_SHARE * p.ram_budget_bytes or not reset_peak_rss():
            return
        while True:
            reset_peak_rss()
            probe()
            measured = peak_rss()
            if self.agree(measured > self.plan.ram_budget_bytes * (1 - CPU_HEADROOM)) and not self.plan.user_set:
                self.recover("calibration", f"Calibration: the largest step needs {measured / GiB:.2f} GiB of RAM, over the "
                                            f"{self.plan.ram_budget_bytes / GiB:.2f} GiB this run may use", model)
                continue
            break
        self.calibration = {"measured_rss": int(measured), "estimate": self.plan.ram_estimate_bytes,
                            "ram_budget_bytes": self.plan.ram_budget_bytes, "micro_batch": self.plan.micro_batch,
                            "seq_len": self.plan.seq_len}
        self.reporter.status(f"Calibrated: the largest step takes {measured / GiB:.2f} GiB of RAM of "
                             f"{self.plan.ram_budget_bytes / GiB:.2f} GiB (estimated {self.plan.ram_estimate_bytes / GiB:.2f} GiB)")

    def watch(self, reserved: int) -> None:
        """A step's reserved memory, kept for the first steps: does the run keep calibration's promise?"""
        if len(self.steps_reserved) < WATCHED_STEPS:
            self.steps_reserved.append(int(reserved))
            self.on_change()

    # -- recovery -------------------------------------------------------------------------
    def shrink(self) -> tuple[dict[str, Any], str]:
        """The next smaller plan's changes, same effective batch; levers that lose no data first.

        Order (bench/README.md, "Levers"): halve the micro-batch (doubling accumulation);
        at micro-batch 1 turn gradient checkpointing on (-3.1x the 7B's step memory),
        then, on a GPU, lean memory (-1.45 GiB at 8,192 tokens, if its RAM fits); GRPO then
        samples shorter answers (a quarter shorter, down to MIN_COMPLETION: the prompts stay
        whole); only then shorten the rows (truncated, the answer kept), by a quarter at a time."""
        p = self.plan
        if p.micro_batch > 1:
            mb = p.micro_batch // 2
            ga = accumulation(p.effective_batch, mb)
            return {"micro_batch": mb}, (f"micro-batch lowered to {mb} with {ga} accumulation steps "
                                         f"(same effective batch of {mb * ga})")
        if not p.gradient_checkpointing:
            return {"gradient_checkpointing": True}, "gradient checkpointing turned on at micro-batch 1"
        lean = {"lean_memory": True, "lora_dropout": 0.0}
        if p.device == "cuda" and not p.sharded and not p.lean_memory and ram_bytes(self.info, p.replace(**lean).shape()) <= p.ram_budget_bytes:
            return lean, "lean memory turned on at micro-batch 1 (activations in RAM, no LoRA dropout)"
        if p.completion_tokens > MIN_COMPLETION:
            c = max(MIN_COMPLETION, int(p.completion_tokens * 0.75) // 8 * 8)
            return ({"completion_tokens": c, "seq_len": p.seq_len - (p.completion_tokens - c)},
                    f"sampled answers shortened to {c} tokens at 1 prompt per pass")
        new = max(64 + p.completion_tokens, int(p.seq_len * 0.75) // 8 * 8)
        if new >= p.seq_len:
            raise FitError(self.too_long(p.seq_len, "even the shortest step does not fit"))
        return {"seq_len": new}, f"rows shortened to {new:,} tokens"

    def recover(self, cause: str, context: str, model, step: int = 0) -> Plan:
        """Switch to the next smaller plan and apply it to the live model and the rows.
        The caller has freed what the failed step held. Returns the plan it replaced."""
        from ..models.loading import enable_checkpointing

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        old = self.plan
        changes, what = self.shrink()
        self.plan = planner.recovered(sharding.card_info(self.info, old), old, what, **changes)
        if model is not None and self.plan.gradient_checkpointing and not old.gradient_checkpointing:
            enable_checkpointing(model)  # (no model yet: a restart's plan, applied as the model loads)
        if model is not None and self.plan.lean_memory and not old.lean_memory:
            from ..models.lean import make_lean

            make_lean(model)
        if self.plan.seq_len != old.seq_len:
            self.fit_rows(self.plan.seq_len)
            fit = self.data.length_fit
            what += f" ({fit.over} of {fit.rows} rows truncated, every row still trained)" if fit else ""
        text = f"{context}: {what}; retrying the step"
        record = {"cause": cause, "text": text, "step": step, "micro_batch": self.plan.micro_batch,
                  "grad_accum": self.plan.grad_accum, "gradient_checkpointing": self.plan.gradient_checkpointing,
                  "lean_memory": self.plan.lean_memory, "seq_len": self.plan.seq_len}
        self.recoveries.append(record)
        self.reporter.warning(text)
        self.reporter.event("oom_recovery", **record)
        self.on_change()
        return old
