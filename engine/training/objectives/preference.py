"""Preference methods: DPO and ORPO, from rows with a chosen and a rejected answer
(engine/data/example.py Pair).

A micro-batch of k pairs is one padded batch of 2k sequences (the chosen ones, then the
rejected ones), so the model runs once per micro-batch; each sequence's answer log-prob
is summed through the chunked head (engine/models/loss.py sequence_logps: no full logits).

DPO (Rafailov et al. 2023), as TRL's DPOTrainer computes its default "sigmoid" loss:
    loss = -logsigmoid(beta * ((pc - rc) - (pr - rr)))
over summed answer log-probs of the policy (p: adapter on) and the reference (r). The
reference is the same weights with the adapter switched off (`model.disable_adapter()`),
run under no_grad: no second copy of the model and no stored activations.

ORPO (Hong et al. 2024), as TRL's ORPOTrainer: no reference; with mean per-token log-probs
ac, ar of the answers,
    log_odds = (ac - ar) - (log(1 - exp(ac)) - log(1 - exp(ar)))
    loss = -ac + beta * -logsigmoid(log_odds)
(the chosen answer's NLL plus the weighted odds-ratio term).

Metrics, per pair and averaged over the step: chosen_reward and rejected_reward (DPO:
beta x the log-prob gained over the reference; ORPO: beta x the mean log-prob, as TRL
logs them), reward_margin (their difference) and pref_accuracy: the share of pairs whose
chosen answer the model now finds more likely than the rejected one, on the quantity the
method compares (DPO: summed log-probs; ORPO: per-token means); a tie counts half.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...data.batching import collate
from ...errors import FitError
from ...models.loss import sequence_logps
from ..steps import shared_passes
from .base import Objective

METRICS = ("reward_margin", "pref_accuracy", "chosen_reward", "rejected_reward")


class PreferenceObjective(Objective):
    def __init__(self, trainer, name: str) -> None:
        super().__init__(trainer)
        self.name = name
        self.beta = float(trainer.cfg.method.beta)
        self.pairs = 1  # pairs in the current step, over every rank (the loss is their mean)

    # -- batches ------------------------------------------------------------------------
    def collate(self, items: list) -> dict[str, torch.Tensor]:
        """k pairs -> one batch of 2k rows: the chosen sequences, then the rejected ones."""
        return collate([p.chosen for p in items] + [p.rejected for p in items], self.t.tokenizer.pad_token_id)

    def step_batches(self, idx: list[list[int]]) -> tuple[list[dict[str, torch.Tensor]], int, int]:
        t = self.t
        mine = [b for b in idx[t.ranks.rank :: t.ranks.world] if b]
        batches = [self.collate([t.data.train[i] for i in b]) for b in mine]
        pairs, trained, tokens = map(int, t.ranks.total(
            sum(b["input_ids"].shape[0] // 2 for b in batches),
            sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches),
            sum(int(b["attention_mask"].sum()) for b in batches)))
        if pairs == 0 or trained == 0:
            raise FitError(f"step {t.step + 1} has no preference pairs to train on; nothing was trained")
        self.pairs = pairs
        return batches, trained, tokens

    # -- the loss -------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per pair: the method's loss, and the metrics (METRICS)."""
        t = self.t
        k = batch["input_ids"].shape[0] // 2
        if self.name == "dpo":  # the reference first: nothing of the policy's pass is held while it runs
            with torch.no_grad(), t.model.disable_adapter():
                ref, _ = sequence_logps(t.model, batch, t.device)
        logps, counts = sequence_logps(t.model, batch, t.device)
        pc, pr = logps[:k], logps[k:]
        if self.name == "dpo":
            chosen, rejected = self.beta * (pc - ref[:k]), self.beta * (pr - ref[k:])
            losses = -F.logsigmoid(chosen - rejected)
            prefer = pc - pr
        else:
            n = counts.clamp(min=1).to(logps.device)
            ac, ar = pc / n[:k], pr / n[k:]
            # log(1 - p) of a mean log-prob near 0 (p near 1) would be -inf: keep p just below 1.
            log_odds = (ac - ar) - (_log1m_exp(ac) - _log1m_exp(ar))
            losses = -ac - self.beta * F.logsigmoid(log_odds)
            chosen, rejected = self.beta * ac, self.beta * ar
            prefer = ac - ar
        accuracy = (prefer > 0).float() + 0.5 * (prefer == 0).float()
        metrics = {"reward_margin": chosen - rejected, "pref_accuracy": accuracy, "chosen_reward": chosen,
                   "rejected_reward": rejected}
        return losses, {name: v.detach() for name, v in metrics.items()}

    def accumulate(self, batches: list[dict[str, torch.Tensor]], trained: int) -> dict[str, float]:
        t = self.t
        t.model.train()
        out = dict.fromkeys(("loss", *METRICS), 0.0)
        for b in batches:
            with t._autocast():
                losses, metrics = self.losses(b)
                loss = losses.sum() / self.pairs
            self.backward(loss)
            out["loss"] += float(loss.detach())
            for name, v in metrics.items():
                out[name] += float(v.float().sum()) / self.pairs
        return out

    # -- evaluation and calibration -------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float] | None:
        """The method's loss, preference accuracy and reward margin over the validation pairs."""
        t = self.t
        val = t.data.val
        if not val:
            return None
        t.model.eval()

        def score(idx: list[int]) -> tuple[float, float, float, int]:
            with t._autocast():
                losses, m = self.losses(self.collate([val[i] for i in idx]))
            return float(losses.sum()), float(m["pref_accuracy"].sum()), float(m["reward_margin"].sum()), len(idx)

        loss, accuracy, margin, n = shared_passes(val, t.plan.micro_batch, t.ranks, score, 4, "pair")
        t.model.train()
        n = max(1, n)
        return {"eval_loss": loss / n, "eval_pref_accuracy": accuracy / n, "eval_reward_margin": margin / n}

    def probe(self, micro_batch: int, seq_len: int) -> None:
        """Calibration at the method's real shape: micro_batch pairs, 2 x micro_batch sequences
        of seq_len tokens, every token trained, DPO's reference pass included."""
        t = self.t
        vocab = t.model.get_input_embeddings().weight.shape[0]
        t.model.train()
        try:
            ids = torch.randint(0, vocab, (2 * micro_batch, seq_len))
            batch = {"input_ids": ids, "labels": ids.clone()}
            with t._autocast():
                losses, _ = self.losses(batch)
            losses.mean().backward()
        finally:
            t.model.zero_grad(set_to_none=True)

    def state(self) -> dict[str, Any]:
        return {}


def _log1m_exp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, kept finite as x approaches 0."""
    return torch.log1p(-torch.exp(x.clamp(max=-1e-6)))
