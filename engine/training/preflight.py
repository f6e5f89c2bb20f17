"""Checks before the first step, each said in one plain sentence: problems that would
otherwise surface as a CUDA assert hundreds of lines long, or as a run that says
"finished" after learning nothing useful."""

from __future__ import annotations

import numpy as np

from ..errors import DataError, ModelError

FEW_ROWS = 20  # fewer training rows than this: the run will mostly memorize them


def check_vocabulary(data, info, model_name: str) -> None:
    """A token id past the embedding table ends in a device-side assert on a GPU: refuse
    before anything is loaded."""
    rows = info.vocab_size
    top = max((int(np.max(e.input_ids)) for e in data.whole_train + data.whole_val if len(e)), default=-1)
    if top >= rows:
        raise ModelError(
            f"the tokenizer of {model_name} makes token ids up to {top:,}, but the model's embedding table has only "
            f"{rows:,} rows: the tokenizer does not belong to this model. Use the tokenizer that ships with the model."
        )


def check_data(data, val_share: float, reporter) -> None:
    """What was read, what was left out and why; too little data for a meaningful run,
    or for a validation loss."""
    report = data.report()
    reporter.status(f"Data: {report['format']} format, {report['kept']} of {report['rows']} rows kept "
                    f"({report['train']} train / {report['val']} validation)")
    if data.skipped:
        first = ", ".join(f"row {p.row} ({p.reason})" for p in data.skipped[:3])
        reporter.warning(f"{len(data.skipped)} row(s) skipped: {first}{' …' if len(data.skipped) > 3 else ''}")
    for note in data.notes:
        reporter.status(f"Note: {note}")
    n = len(data.train)
    if n < FEW_ROWS:
        reporter.warning(f"only {n} training row(s): the model will mostly memorize {'it' if n == 1 else 'them'}. "
                         "A persona or a format is learned reliably from about 100 varied rows.")
    if not data.val and val_share > 0:
        reporter.warning("too few rows for a validation split: no validation loss will be reported")


PREFERENCE_METHODS = ("dpo", "orpo")


def method_problem(method: str, data, source: str) -> str:
    """Why `method` cannot train on `data` (one sentence for the user), or ''."""
    if method in PREFERENCE_METHODS and not data.pairs:
        return (f"{source}: {method.upper()} learns from a chosen and a rejected answer per row, and this file's rows "
                f"({data.shape.spec.label}) have one answer each. Use a preference file (fields prompt / chosen / "
                "rejected, or chosen / rejected dialogues), or the SFT method for this file.")
    return ""


def check_method(method: str, data, source: str, reporter) -> None:
    """Refuse a preference method on rows without pairs; a preference file under a method
    that imitates answers (SFT, GRPO's reference answers) trains on its chosen answers."""
    problem = method_problem(method, data, source)
    if problem:
        raise DataError(problem)
    if data.pairs and method not in PREFERENCE_METHODS:
        data.use_chosen()
        reporter.warning(f"{source} holds preference pairs: {method.upper()} trains on each row's chosen answer and leaves "
                         "the rejected one out; choose DPO or ORPO to learn from both.")
