"""GRPO (group relative policy optimization, DeepSeekMath / DeepSeek-R1): for each
prompt, sample G answers from the adapter-on model, score them with the run's checkable
rewards (engine/training/rewards.py), and push up the tokens of the answers that scored
above their group's mean and down those below it.

The formulas are TRL's GRPOTrainer's (compute_loss, one update per batch):
    advantage A_i   = (r_i - mean(r_group)) / (std(r_group) + 1e-4)
    ratio           = exp(logp - logp.detach())  (= 1, but its gradient is the policy gradient)
    per-token loss  = -A_i * ratio + kl * k3,  k3 = exp(ref - logp) - (ref - logp) - 1
    loss            = sum over the step's answer tokens / their number (TRL's "dapo"
                      normalization: every token weighs the same, however long its answer)
The reference for the KL term is the same weights with the adapter off
(`model.disable_adapter()`): no second copy. The loop around it (steps, planner,
out-of-memory recovery, checkpoints, reporting) is TuneDesk's own, as for every method
(docs/ARCHITECTURE.md says why).

A step samples every micro-batch first (no gradients, a KV cache), then runs the
training passes, so each token's weight is known before the first backward.
"""

from __future__ import annotations

import statistics

import torch

from ...errors import FitError
from ...eval.generate import stop_ids
from ...models.loss import token_logps
from .. import rewards
from .base import Objective
from .sampling import Completion, sample, sequences

EPS = 1e-4  # TRL's: a group whose answers all scored alike has no advantage, not a division by zero
SHOWN = 8  # generations per "generations" event: one prompt's group (compared with each other), at most this many
EVAL_PROMPTS = 8  # validation prompts answered greedily at each evaluation


class GRPOObjective(Objective):
    name = "grpo"

    def __init__(self, trainer) -> None:
        super().__init__(trainer)
        m = trainer.cfg.method
        self.rewards = rewards.build(m.rewards)
        self.kl = float(m.kl)
        self.temperature = float(m.temperature)
        self.stops = stop_ids(trainer.tokenizer)
        tok = trainer.tokenizer
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.references: dict[int, str] = trainer.data.references
        self._opened: dict[int, bool] = {}
        if trainer.cfg.train.early_stop and trainer.data.val:
            n = min(EVAL_PROMPTS, len(trainer.data.val))
            trainer.reporter.status(f"GRPO: no early stopping; the adapter is the last step's (the validation reward, "
                                    f"from {n} greedy answer{'s' if n > 1 else ''}, is plotted)")

    @property
    def group(self) -> int:
        return self.t.plan.group

    # -- the step ----------------------------------------------------------------------
    def step_batches(self, idx: list[list[int]]) -> tuple[list[list[int]], int, int]:
        """This rank's micro-batches of prompt indices; the tokens are counted once sampled."""
        t = self.t
        mine = [b for b in idx[t.ranks.rank :: t.ranks.world] if b]
        prompts = sum(len(b) for b in idx)
        if not prompts:
            raise FitError(f"step {t.step + 1} has no prompts to sample answers for; nothing was trained")
        return mine, prompts * self.group, sum(len(t.data.train[i]) for b in idx for i in b) * self.group

    def accumulate(self, batches: list[list[int]], trained: int) -> dict[str, float]:
        t = self.t
        rolled, mine, n = self._rollouts(batches)  # every answer first: the tokens' weights need their count
        world = t.ranks.world
        t.model.train()
        loss_total = kl_total = 0.0
        for examples, cs, scores in rolled:
            prompts = [self._prompt(i) for i in examples]
            ids, labels = sequences(prompts, cs, self.pad)
            adv = advantages([s["total"] for s in scores], self.group)
            per_token = torch.tensor([a for a, c in zip(adv, cs) for _ in range(len(c.ids))], device=t.device)
            ref = None
            if self.kl > 0:
                with torch.no_grad(), t.model.disable_adapter(), t._autocast():
                    ref = token_logps(t.model, ids.to(t.device), labels, self.temperature)
            with t._autocast():
                logp = token_logps(t.model, ids.to(t.device), labels, self.temperature)
            loss = -(torch.exp(logp - logp.detach()) * per_token).sum()
            if ref is not None:
                k3 = torch.exp(ref - logp) - (ref - logp) - 1
                loss = loss + self.kl * k3.sum()
                kl_total += float(k3.detach().sum())
            loss = loss / max(1, n)  # over every rank's tokens: the ranks' gradients are summed
            self.backward(loss)
            loss_total += float(loss.detach())
        return self._metrics(rolled, mine, n, loss_total, kl_total, world)

    def _rollouts(self, batches: list[list[int]]) -> tuple[list, int, int]:
        """This rank's answers, their tokens (stop tokens included), and the step's answer
        tokens over every rank: each token of the step weighs the same, however the answers
        fell to the ranks (TRL's "dapo" normalization sums the count over processes too).
        The ranks first agree that every rank's sampling fitted, in the same exchange as the
        count: a rank out of memory here must not leave the others waiting in it."""
        rolled: list = []
        failed = False
        try:
            rolled = [self._rollout(b) for b in batches]
        except torch.OutOfMemoryError:
            failed = True
        mine = sum(len(c.ids) for _, cs, _ in rolled for c in cs)
        lost, n = self.t.ranks.total(float(failed), float(mine))
        if lost:  # on every rank: the loop agrees again, then retries the step smaller
            raise torch.OutOfMemoryError("out of memory while sampling the answers")
        return rolled, mine, int(n)

    def _rollout(self, examples: list[int]) -> tuple[list[int], list[Completion], list[dict[str, float]]]:
        t = self.t
        prompts = [self._prompt(i) for i in examples]
        with t._autocast():
            cs = sample(t.model, t.tokenizer, prompts, self.group, t.plan.completion_tokens, self.stops, t.device,
                        temperature=self.temperature)
        return examples, cs, [self._score(t.data.train[examples[c.prompt]], c) for c in cs]

    def _prompt(self, i: int, data=None) -> list[int]:
        return [int(x) for x in (data or self.t.data.train)[i].input_ids]

    def _score(self, e, c: Completion) -> dict[str, float]:
        s = rewards.Sample(c.text, self.references.get(e.row, ""), c.tokens, self._opens_think(e))
        parts = rewards.score(self.rewards, s)
        return {**parts, "total": sum(parts.values())}

    def _opens_think(self, e) -> bool:
        """Does this prompt end inside an opened <think> (reasoning templates)? Then an answer's
        thought has no opening tag of its own."""
        if e.row not in self._opened:
            tail = self.t.tokenizer.decode([int(x) for x in e.input_ids[-4:]])
            self._opened[e.row] = tail.rstrip().endswith("<think>")
        return self._opened[e.row]

    def _metrics(self, rolled, mine: int, n: int, loss: float, kl: float, world: int) -> dict[str, float]:
        scores = [s for _, _, ss in rolled for s in ss]
        cs = [c for _, cc, _ in rolled for c in cc]
        totals = [s["total"] for s in scores]
        # Every value is this rank's share of the sum over ranks (the loop adds them up).
        out = {"loss": loss, "reward_mean": statistics.fmean(totals) / world,
               "reward_std": statistics.pstdev(totals) / world,
               "completion_length": statistics.fmean(c.tokens for c in cs) / world,
               # what the step really ran on (the loop's own count, made before sampling, had no answers yet)
               "tokens": sum(len(self.t.data.train[ex[c.prompt]]) + len(c.ids) for ex, cc, _ in rolled for c in cc),
               "trained_tokens": mine}
        for name in self.rewards:
            out[f"reward_{name}"] = statistics.fmean(s[name] for s in scores) / world
        if self.kl > 0:
            out["kl"] = kl / max(1, n)  # this rank's share of the step's mean over every rank's tokens
        ex, cc, ss = rolled[0]
        self._show("train", [(ex[c.prompt], c, s) for c, s in zip(cc, ss) if c.prompt == 0][:SHOWN], self.t.data.train)
        return out

    def _show(self, split: str, items, data) -> None:
        """A few generations for the window: prompt (its end), answer, reward and its parts."""
        t = self.t
        samples = [{"row": int(data[i].row), "prompt": prompt_text(t.tokenizer, data[i].input_ids),
                    "completion": c.text, "ended": c.ended, "tokens": c.tokens, "reward": round(s["total"], 4),
                    "parts": {k: round(v, 4) for k, v in s.items() if k != "total"},
                    "reference": self.references.get(int(data[i].row), "")} for i, c, s in items]
        t.reporter.event("generations", step=t.step + (1 if split == "train" else 0), split=split, samples=samples)

    # -- evaluation and calibration ------------------------------------------------------
    def evaluate(self) -> dict[str, float] | None:
        """Greedy answers to the first validation prompts, scored: eval_reward_mean and its
        parts. No eval_loss: early stopping and the best-adapter choice (engine/training/
        early_stop.py) act on it, and a few greedy answers score in steps of 1/EVAL_PROMPTS,
        too coarse to stop a run or to pick an adapter by; the run delivers its last step's."""
        t = self.t
        val = t.data.val[:EVAL_PROMPTS]
        if not val:
            return None
        mine = list(range(len(val)))[t.ranks.rank :: t.ranks.world]
        sums = {name: 0.0 for name in self.rewards}
        shown = []
        if mine:
            with t._autocast():
                cs = sample(t.model, t.tokenizer, [self._prompt(i, val) for i in mine], 1, t.plan.completion_tokens,
                            self.stops, t.device, greedy=True)
            for i, c in zip(mine, cs):
                s = self._score(val[i], c)
                shown.append((i, c, s))
                for name in sums:
                    sums[name] += s[name]
        totals = t.ranks.total(*sums.values())
        out = {f"eval_reward_{name}": v / len(val) for name, v in zip(sums, totals)}
        mean = sum(out.values())
        self._show("eval", shown[:SHOWN], val)
        return {"eval_reward_mean": mean, **out}

    def probe(self, micro_batch: int, seq_len: int) -> None:
        """The plan's largest step for real: micro_batch random prompts of the longest prompt
        length, G full-length answers each, then the training pass (and the reference pass)."""
        t = self.t
        c = t.plan.completion_tokens
        vocab = t.model.get_input_embeddings().weight.shape[0]
        prompts = torch.randint(0, vocab, (micro_batch, max(1, seq_len - c))).tolist()
        try:
            with t._autocast():
                cs = sample(t.model, t.tokenizer, prompts, self.group, c, [], t.device, min_new=c)
            ids, labels = sequences(prompts, cs, self.pad)
            t.model.train()
            if self.kl > 0:
                with torch.no_grad(), t.model.disable_adapter(), t._autocast():
                    token_logps(t.model, ids.to(t.device), labels, self.temperature)
            with t._autocast():
                logp = token_logps(t.model, ids.to(t.device), labels, self.temperature)
            (-logp.sum() / max(1, logp.numel())).backward()
        finally:
            t.model.zero_grad(set_to_none=True)

    # -- the end ---------------------------------------------------------------------------
    def summary(self) -> dict:
        """The rewards at the start and the end of the run (means of the first and last 5 steps)."""
        h = [r for r in self.t.history if "reward_mean" in r]
        if not h:
            return {}
        keys = ["reward_mean", *(f"reward_{n}" for n in self.rewards)]
        k = min(5, max(1, len(h) // 2))
        first = {key: round(statistics.fmean(r[key] for r in h[:k]), 4) for key in keys}
        last = {key: round(statistics.fmean(r[key] for r in h[-k:]), 4) for key in keys}
        evals = [r["eval_reward_mean"] for r in self.t.history if "eval_reward_mean" in r]
        return {"rewards": {"first_steps": first, "last_steps": last, "steps_averaged": k,
                            "eval_first": round(evals[0], 4) if evals else None,
                            "eval_last": round(evals[-1], 4) if evals else None}}

    def report(self, summary: dict) -> None:
        r = summary.get("rewards")
        if not r:
            return
        a, b = r["first_steps"], r["last_steps"]
        parts = ", ".join(f"{n} {a[f'reward_{n}']:.2f} -> {b[f'reward_{n}']:.2f}" for n in self.rewards)
        val = (f"; validation {r['eval_first']:.2f} -> {r['eval_last']:.2f}" if r["eval_first"] is not None else "")
        k = r["steps_averaged"]
        self.t.reporter.status(f"Rewards: mean {a['reward_mean']:.2f} -> {b['reward_mean']:.2f} of {len(self.rewards)} "
                               f"({'first and last step' if k == 1 else f'first and last {k} steps'}; {parts}){val}")


def advantages(rewards_: list[float], group: int) -> list[float]:
    """(r - group mean) / (group std + EPS), the groups being consecutive runs of `group` answers."""
    out = []
    for k in range(0, len(rewards_), group):
        g = rewards_[k : k + group]
        mean, std = statistics.fmean(g), statistics.stdev(g) if len(g) > 1 else 0.0  # TRL: torch's unbiased std
        out += [(r - mean) / (std + EPS) for r in g]
    return out


def prompt_text(tokenizer, ids, chars: int = 300) -> str:
    """The end of a prompt as text, template markers removed (what the window shows)."""
    text = tokenizer.decode([int(x) for x in ids], skip_special_tokens=True).strip()
    return text if len(text) <= chars else "…" + text[-chars:]


ROLE_WORDS = {"system", "user", "assistant", "<think>", ""}


def question(prompt: str) -> str:
    """A prompt's last line of content (what the window and the demo show of it): the
    template's text ends with the user's question and the assistant's role word."""
    lines = [x.strip() for x in prompt.splitlines() if x.strip().lower() not in ROLE_WORDS]
    return lines[-1] if lines else prompt.strip()
