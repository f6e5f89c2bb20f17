"""From a dataset file to tokenized train / validation examples and a report of what was done."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..errors import DataError
from .readers import RowProblem, iter_records
from .render import IGNORE, Rendered, ensure_chat_template, render
from .shapes import RowError, Shape, detect, to_conversation

DETECT_ROWS = 50
MIN_ROWS = 2


@dataclass
class Example:
    row: int
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class PreparedData:
    shape: Shape
    train: list[Example]
    val: list[Example]
    rows: int
    skipped: list[RowProblem] = field(default_factory=list)
    template_is_own: bool = True
    samples: list[Rendered] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return len(self.train) + len(self.val)

    def report(self) -> dict[str, Any]:
        return {
            **self.shape.to_dict(),
            "rows": self.rows,
            "kept": self.kept,
            "train": len(self.train),
            "val": len(self.val),
            "skipped": [{"row": p.row, "reason": p.reason} for p in self.skipped],
            "trained_tokens": sum(sum(1 for x in e.labels if x != IGNORE) for e in self.train),
        }


def prepare(cfg: DataConfig, tokenizer, *, shape: Shape | None = None) -> PreparedData:
    path = Path(cfg.path)
    records = list(iter_records(path))
    if not records:
        raise DataError(f"{path.name}: no records in the file")
    if shape is None:
        sample = [r for _, r in records[:DETECT_ROWS] if not isinstance(r, RowProblem)]
        shape = detect(sample)
        if shape is None:
            keys = sorted({k for r in sample if isinstance(r, dict) for k in r})[:12]
            raise DataError(
                f"{path.name}: cannot tell the dataset's format from its fields ({', '.join(keys) or 'none'}); "
                "expected e.g. instruction/output, question/answer, prompt/completion or messages"
            )
    template_is_own = ensure_chat_template(tokenizer)

    examples: list[Example] = []
    skipped: list[RowProblem] = []
    samples: list[Rendered] = []
    for row, record in records:
        if isinstance(record, RowProblem):
            skipped.append(record)
            continue
        try:
            messages = to_conversation(record, shape)
        except RowError as e:
            skipped.append(RowProblem(row, str(e)))
            continue
        if cfg.system_prompt and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": cfg.system_prompt}] + messages
        try:
            r = render(tokenizer, messages)
        except Exception as e:  # a template can raise on odd role orders
            skipped.append(RowProblem(row, f"chat template failed: {e}"))
            continue
        if len(r.input_ids) > cfg.max_seq_len:
            skipped.append(RowProblem(row, f"too long: {len(r.input_ids)} tokens > {cfg.max_seq_len}"))
            continue
        if r.n_trained == 0:
            skipped.append(RowProblem(row, "no answer tokens to train on"))
            continue
        if len(samples) < 3:
            samples.append(r)
        examples.append(Example(row, r.input_ids, r.labels))

    if len(examples) < MIN_ROWS:
        reasons = "; ".join(f"row {p.row}: {p.reason}" for p in skipped[:3])
        raise DataError(
            f"{path.name}: only {len(examples)} usable row(s) of {len(records)}"
            + (f" ({len(skipped)} skipped, e.g. {reasons})" if skipped else "")
        )

    rng = random.Random(cfg.seed)
    rng.shuffle(examples)
    if cfg.max_samples:
        examples = examples[: cfg.max_samples]
    n_val = 0
    if cfg.val_share > 0:
        n_val = round(len(examples) * cfg.val_share)
        n_val = max(cfg.min_val_rows, min(cfg.max_val_rows, n_val))
        n_val = min(n_val, len(examples) - 1)
    return PreparedData(
        shape=shape,
        train=examples[n_val:],
        val=examples[:n_val],
        rows=len(records),
        skipped=skipped,
        template_is_own=template_is_own,
        samples=samples,
    )
