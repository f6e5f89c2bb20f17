"""`tunedesk train --method …`: the training method's options (config.MethodConfig)."""

from __future__ import annotations

import argparse

from ..config import METHODS, MethodConfig


def add(p: argparse.ArgumentParser) -> None:
    d = MethodConfig()
    g = p.add_argument_group("method", "how the model learns from the rows")
    g.add_argument("--method", choices=METHODS, default=None,
                   help="sft (default): imitate the answers; dpo / orpo: prefer each row's chosen answer to its "
                        "rejected one; grpo: sample answers and reward those that check out")
    g.add_argument("--beta", type=float, default=None,
                   help=f"dpo: how far the model may move from the base (larger: less far); orpo: the weight of "
                        f"the preference term (default {d.beta})")
    g.add_argument("--group", type=int, default=None, help=f"grpo: answers sampled per prompt (default {d.group})")
    g.add_argument("--completion-tokens", type=int, default=None,
                   help=f"grpo: the longest sampled answer, in tokens (default {d.completion_tokens})")
    g.add_argument("--kl", type=float, default=None, help=f"grpo: pull towards the base model (default {d.kl}: none)")
    g.add_argument("--temperature", type=float, default=None,
                   help=f"grpo: sampling temperature of the answers (default {d.temperature})")
    g.add_argument("--reward", default=None, metavar="R[,R…]",
                   help="grpo: rewards to add up: match (the final answer equals the row's), format (<think>…</think> "
                        "then an answer), length:MIN-MAX (tokens), regex:PATTERN (default match)")


def apply(cfg, a: argparse.Namespace) -> None:
    m = cfg.method
    for field, value in (("name", a.method), ("beta", a.beta), ("group", a.group),
                         ("completion_tokens", a.completion_tokens), ("kl", a.kl), ("temperature", a.temperature)):
        if value is not None:
            setattr(m, field, value)
    if a.reward is not None:
        m.rewards = [r.strip() for r in a.reward.split(",") if r.strip()]
