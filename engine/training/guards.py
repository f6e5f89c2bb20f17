"""What keeps a run from harming the model it tunes, around the loop of train.py:
the forgetting meter (engine/eval/probe.py) at every evaluation, replay of the base
model's own answers mixed into the training rows (replay.py), the best adapter kept and
early stopping (early_stop.py), and the end-of-training check that the tuned model
still ends its answers (EOS) before the token limit."""

from __future__ import annotations

import json
from typing import Any

from ..atomic import write_json
from ..data.example import answered
from ..eval import probe
from ..eval.generate import greedy, last_answer_start
from . import replay, steps
from .early_stop import BestKeeper

PROBE_JSON = "probe.json"
EOS_PROMPTS = 4  # validation prompts the tuned model answers at the end


def replay_share(cfg, data) -> float:
    """The request's share, else the default: on for conversations (plain text trains a
    model to continue documents, where chat replay does not belong)."""
    if cfg.method.name == "grpo" or data.pairs:  # replay rows are answers to imitate: GRPO scores prompts'
        # sampled answers by rewards, and a preference method learns from pairs only
        return 0.0
    if cfg.train.replay_share is not None:
        return float(cfg.train.replay_share)
    return 0.0 if data.shape.spec.plain_text else replay.DEFAULT_SHARE


class Guards:
    def __init__(self, t) -> None:
        self.t = t
        cfg = t.cfg
        self.system = cfg.data.system_prompt
        self.items = probe.items()
        self.examples = probe.examples(t.tokenizer, self.items, self.system)
        has_val = bool(t.data.val)
        self.keeper = BestKeeper(cfg.train.patience if cfg.train.early_stop and has_val else None)
        self.share = 0.0
        self.replay_rows: list = []
        self.base_answers: dict | None = None
        self.final_answers: dict | None = None
        self.eos: dict | None = None

    # -- replay ------------------------------------------------------------------------
    def mix_replay(self, resume) -> None:
        """Add the replay rows to the training rows (before the data stream is made)."""
        t = self.t
        self.share = replay_share(t.cfg, t.data)
        if self.share <= 0:
            return
        convs = replay.load(resume.path) if resume is not None else None
        if convs is None:
            convs = replay.conversations(t.model, t.tokenizer, t.device, self.system, t.model_folder, t.reporter.status)
        self.convs = convs
        task_rows = len(t.data.train)
        self.replay_rows = replay.examples(t.tokenizer, convs, replay.rows_needed(self.share, task_rows), t.plan.seq_len)
        if not self.replay_rows:
            t.reporter.warning(f"Replay is off for this run: the base model finished none of its answers to the general "
                               f"prompts within {replay.MAX_NEW_TOKENS} tokens (or got none of the known answers right)")
            self.share = 0.0
            return
        t.data.train = t.data.train + self.replay_rows
        t.reporter.status(f"Replay: {len(self.replay_rows)} of the base model's own answers mixed with {task_rows} "
                          f"training rows ({self.share:.0%} of the mix)")

    def save_replay(self, run) -> None:
        if self.share > 0 and getattr(self, "convs", None) is not None:
            replay.save(run.path, self.convs)

    # -- the meter -----------------------------------------------------------------------
    def general_loss(self) -> float | None:
        t = self.t
        return steps.evaluate(t.model, self.examples, len(self.examples), t.tokenizer.pad_token_id, t.device,
                              t._autocast, t.ranks)

    def answers(self) -> dict[str, Any]:
        t = self.t
        return probe.answers(t.model, t.tokenizer, self.items, t.device, self.system)

    def start(self, run) -> None:
        """The base model's answers to the probe (the adapter is still zero at step 0)."""
        if self.t.ranks.main or self.t.ranks.lockstep:  # sharded: every rank runs the passes, rank 0 writes
            self.base_answers = self.answers()
        if self.t.ranks.main:
            write_json(run.path / PROBE_JSON, {"base": self.base_answers})

    def base_loss(self) -> float | None:
        return next((h["general_loss"] for h in self.t.history if "general_loss" in h), None)

    # -- best adapter ----------------------------------------------------------------------
    def evaluated(self, step: int, loss: float | None) -> None:
        """A new evaluation: a new best is written to best/ (atomic), so a crash keeps it too."""
        t = self.t
        if loss is None or not self.keeper.update(step, loss) or t.run is None:
            return
        weights = t.ranks.adapter_state(t.model)  # every rank of a sharded run gathers
        if t.ranks.main:
            t.run.write_adapter(t.model, t.cfg.model.source, step, folder="best", state_dict=weights, eval_loss=loss)

    def restore_best(self) -> int | None:
        """Before the run's adapter is written: the last step's weights to last/, and the best
        evaluation's loaded back into the model (what Compare, chat and export then use)."""
        t, k = self.t, self.keeper
        if k.best_step is None or k.best_step == t.step or not (t.run.best_dir / "adapter_config.json").is_file():
            return None
        weights = t.ranks.adapter_state(t.model)
        if t.ranks.main:
            t.run.write_adapter(t.model, t.cfg.model.source, t.step, folder="last", state_dict=weights)
        from safetensors.torch import load_file

        t.ranks.load_adapter(t.model, load_file(t.run.best_dir / "adapter_model.safetensors", device=str(t.device)))
        return k.best_step

    # -- the end ----------------------------------------------------------------------------
    def finish(self, run) -> None:
        """The tuned model's probe answers and the EOS check (rank 0)."""
        t = self.t
        if not t.ranks.main and not t.ranks.lockstep:
            return
        if self.base_answers is None and (run.path / PROBE_JSON).is_file():  # resumed: the start's answers
            self.base_answers = json.loads((run.path / PROBE_JSON).read_text(encoding="utf-8")).get("base")
        self.final_answers = self.answers()
        self.eos = self.eos_check()
        saved = {"base": self.base_answers, "tuned": self.final_answers, "eos": self.eos}
        if t.ranks.main:
            write_json(run.path / PROBE_JSON, saved)

    def eos_check(self) -> dict[str, Any] | None:
        """Does the tuned model end its answers on its own? A few validation prompts, with
        room for twice their reference answer."""
        t = self.t
        rows = [answered(e) for e in t.data.val[:EOS_PROMPTS] or t.data.train[:EOS_PROMPTS]]  # a pair: its chosen answer
        rows = [e for e in rows if e.row >= 0 and e.trained.any()]  # GRPO's prompts carry no answer to size the room by
        if not rows:
            return None
        prompts, limits = [], []
        for e in rows:
            start = last_answer_start(e.trained)
            prompts.append([int(x) for x in e.input_ids[:start]])
            limits.append(len(e) - start)
        limit = int(min(160, max(32, 2 * max(limits) + 16)))
        got = greedy(t.model, t.tokenizer, prompts, limit, t.device, batch=len(prompts))
        unended = [int(e.row) for e, a in zip(rows, got) if not a.ended]
        ok = not unended
        return {"ok": ok, "checked": len(rows), "unended_rows": unended, "max_new_tokens": limit,
                "warning": "" if ok else
                (f"The tuned model did not stop on its own within {limit} tokens on {len(unended)} of {len(rows)} "
                 f"validation prompts (rows {', '.join(map(str, unended))}): check that your answers are complete and "
                 "that the chat template ends each turn; in chat, set a token limit.")}

    def summary(self) -> dict[str, Any]:
        k = self.keeper
        # The delivered adapter is the best evaluation's: the meter's figure is that step's.
        now = self.general_at(k.best_step) if k.best_step is not None else self.last_general
        verdict = probe.verdict(self.base_loss(), now, self.base_answers, self.final_answers, self.share)
        task_start = next((h["eval_loss"] for h in self.t.history if "eval_loss" in h), None)
        return {
            "best_step": k.best_step,
            "best_eval_loss": None if k.best_loss is None else round(float(k.best_loss), 6),
            "stopped_early": k.stopped_early,
            "patience": k.patience,
            "adapter": "best",
            "replay_share": self.share,
            "replay_rows": len(self.replay_rows),
            "probe": {**verdict, "task": probe.change_words(task_start, k.best_loss),
                      "general": probe.change_words(verdict["loss_base"], verdict["loss"])},
            "eos": self.eos,
        }

    def report(self, summary: dict[str, Any]) -> None:
        """The end in the Reporter's words (the CLI's lines, the window's log): which
        adapter, the meter, and the plain warnings (general ability, EOS)."""
        rep, k, p = self.t.reporter, self.keeper, summary.get("probe") or {}
        if k.best_step is not None:
            rep.status(f"The adapter is step {k.best_step}'s, the best validation loss ({k.best_loss:.4f})"
                       + ("; the last step's is in last/" if k.best_step != self.t.step else ""))
        if p.get("task"):
            rep.status("Forgetting meter: " + probe.headline(summary))
        for w in (p.get("warning"), (summary.get("eos") or {}).get("warning")):
            if w:
                rep.warning(w)

    last_general: float | None = None

    def general_at(self, step: int) -> float | None:
        """The meter's loss at an evaluation (the best step's, once the best is restored)."""
        return next((h["general_loss"] for h in reversed(self.t.history) if h.get("step") == step and "general_loss" in h),
                    None)

