"""The passes that are not an optimizer step: the calibration probe and the evaluation,
and the one way every pass catches running out of GPU memory."""

from __future__ import annotations

import torch

from ..data.batching import collate, eval_batches
from ..errors import TuneDeskError
from ..models.loss import batch_loss_sum, count_trained, loss_sum


def out_of_memory(fn, *args) -> bool:
    """Run fn; True if CUDA ran out of memory. Recovery happens in the caller, after the
    handler has exited: inside it, the traceback still holds every activation of the
    failed step, and no smaller retry could fit next to them."""
    try:
        fn(*args)
        return False
    except torch.OutOfMemoryError:
        return True


def memory_in_use(device: str) -> int:
    """The step's peak GPU memory, or on the CPU the process's resident memory."""
    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    import psutil

    return int(psutil.Process().memory_info().rss)


def probe(model, micro_batch: int, seq_len: int, device, autocast) -> None:
    """One forward/backward on random ids at the plan's largest shape, every token trained."""
    vocab = model.get_input_embeddings().weight.shape[0]
    # Train mode, as in the real step: a freshly loaded model is in eval mode, where
    # gradient checkpointing does not act and every layer's activations are kept.
    model.train()
    try:
        ids = torch.randint(0, vocab, (micro_batch, seq_len), device=device)
        with autocast():
            loss = loss_sum(model, ids, None, ids) / ids.numel()
        loss.backward()
    finally:
        model.zero_grad(set_to_none=True)


def shared_passes(examples: list, batch: int, ranks, score, sums: int, what: str) -> list[float]:
    """Sums of score(indices) (a list of `sums` numbers) over the evaluation batches of
    `examples`, each rank taking its share, added up over the ranks. A rank out of memory
    halves the batch on every rank. A sharded model's forward is a collective: every rank
    makes as many passes as the rank with the most batches, the extra ones on a batch it
    does not count. `what` names one example in the message when one alone does not fit."""
    totals = [0.0] * sums

    def run(size: int) -> None:
        totals[:] = [0.0] * sums
        every = eval_batches(examples, size)
        mine = every[ranks.rank :: ranks.world]
        rounds = -(-len(every) // ranks.world) if ranks.lockstep else len(mine)
        for i in range(rounds):
            got = score(mine[i] if i < len(mine) else every[0])
            if i < len(mine):
                totals[:] = [a + float(b) for a, b in zip(totals, got, strict=True)]

    def failed(size: int) -> bool:
        lost = out_of_memory(run, size)
        if lost and ranks.lockstep:  # sharded: the others wait inside a collective (training/sharding.py)
            ranks.out_of_memory()
        return lost

    while ranks.any(failed(batch)):
        if batch == 1:
            raise TuneDeskError(f"out of GPU memory while evaluating one validation {what}; use a shorter sequence length")
        batch //= 2
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return ranks.total(*totals)


@torch.no_grad()
def evaluate(model, examples: list, batch: int, pad_id: int, device, autocast, ranks) -> float | None:
    """Token-weighted mean loss over the validation examples (shared_passes: each rank its
    share of the batches)."""
    if not examples:
        return None
    model.eval()

    def score(idx: list[int]) -> tuple[float, int]:
        b = collate([examples[j] for j in idx], pad_id)
        with autocast():
            return float(batch_loss_sum(model, b, device)), count_trained(b["labels"])

    loss, count = shared_passes(examples, batch, ranks, score, 2, "example")
    model.train()
    return loss / max(1, count)
