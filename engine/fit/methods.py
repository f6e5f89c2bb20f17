"""What each training method (config.MethodConfig) means for the card, and the plan's
sentence about it.

A preference example (DPO, ORPO) is two sequences, the chosen and the rejected answer
after the same prompt, run as one batch: the step holds twice the activations and logits
rows of an SFT example of the same length (memory.StepShape.sequences). DPO's reference
pass (the adapter switched off, under no_grad) keeps no activations for the backward
pass: it holds one layer's worth at a time, less than the training pass it precedes, so
it adds no term to the peak.
"""

from __future__ import annotations

SEQUENCES = {"dpo": 2, "orpo": 2}


def sequences(method: str) -> int:
    """Sequences one example of this method puts through the model per step."""
    return SEQUENCES.get(method, 1)


def unit(method: str, n: int) -> str:
    """'3 pairs' / '1 example': what one micro-batch holds, in the method's words."""
    if sequences(method) == 2:
        return f"{n} pair{'s' if n != 1 else ''} (chosen + rejected: {2 * n} sequences)"
    return f"{n} example(s)"


def reason(m) -> str:
    """The plan's plain sentence about the method (m: config.MethodConfig)."""
    if m.name == "dpo":
        return (f"DPO: each row's chosen answer is made more likely than its rejected one, measured against the model "
                f"itself with the adapter switched off (no second copy in memory); beta {m.beta:g} keeps the tuned model "
                "near the base (larger: nearer). Each example is two sequences, planned as such.")
    if m.name == "orpo":
        return (f"ORPO: learns each row's chosen answer and, weighted by beta {m.beta:g}, to prefer it to the rejected "
                "one; no reference pass. Each example is two sequences, planned as such.")
    if m.name == "grpo":
        return (f"GRPO: {m.group} answers of up to {m.completion_tokens} tokens are sampled per prompt and the ones "
                f"that score better on the rewards ({', '.join(m.rewards)}) are made more likely.")
    return "SFT: the model learns to write each row's answer."
