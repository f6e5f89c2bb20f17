"""summary.json: what a run did, in the figures the Runs page, the CLI and the benchmarks
read (status and error, losses, speed, the rows and tokens it really trained on, and
how it was placed on the hardware)."""

from __future__ import annotations

from typing import Any


def summarize(t, status: str, error: str | None, first_eval, duration: float) -> dict[str, Any]:
    """summary.json: how the run ended, what it trained on, and how it ran."""
    losses = [h["loss"] for h in t.history if "loss" in h]
    fit = t.data.length_fit
    used = {e.row for e in t.data.train if e.row >= 0}  # below zero: replay rows, not the file's
    return {
        "status": status,
        "error": error,
        "steps": t.step,
        "total_steps": t.total_steps,
        "epochs": round(t.stream.epoch_float, 4),
        "train_loss": round(sum(losses[-5:]) / len(losses[-5:]), 6) if losses else None,
        "eval_loss": t.last_eval,
        "eval_loss_start": first_eval,
        "duration_s": round(duration, 2),
        "tokens_per_s": round(t.tokens_done / duration, 1) if duration > 0 else None,
        "trained_tokens": t.trained_tokens,
        "rows_total": t.data.rows,
        "rows_used": len(used),
        "rows_lost": len({e.row for e in t.data.whole_train} - used),
        "rows_truncated": (fit.context_cut + fit.answer_cut) if fit else 0,
        "seq_len": t.plan.seq_len,
        "length": fit.sentence() if fit else "",
        "device": t.placement.device,
        "dtype": str(t.placement.dtype).replace("torch.", ""),
        "quantization": t.placement.quantization,
        "oom_recoveries": t.card.oom_events,
        "model_folder": str(t.model_folder),
        "method": t.cfg.method.name,
        **method_evaluations(t.history),
        **t.guards.summary(),
    }


def method_evaluations(history: list[dict[str, Any]]) -> dict[str, Any]:
    """A method's own validation figures beside the loss (eval_pref_accuracy, …): the last
    evaluation's, and the first's as <name>_start, so a run says how far it moved them."""
    evals = [h for h in history if "eval_loss" in h]
    names = sorted({k for h in evals for k in h if k.startswith("eval_") and k != "eval_loss"})
    out: dict[str, Any] = {}
    for name in names:
        values = [h[name] for h in evals if h.get(name) is not None]
        if values:
            out[name], out[f"{name}_start"] = values[-1], values[0]
    return out
