"""From a dataset file to tokenized train / validation examples and a report of what was done.

    file --readers--> records --shapes--> conversations --render--> ids + trained mask

Rows that cannot be used are skipped and listed (row, reason); the run stops only when
too few usable rows remain. The tokenized result is cached by file content, tokenizer
and settings as flat numpy arrays that are memory-mapped back, so a second run on the
same file starts at once and a big dataset is held in memory once, compactly.

About 380 lines: the pipeline above in the order it runs (checks, cache, split), so a
reader follows one file from its records to its examples; the parts with their own ideas
(readers, formats, render, fit_length, batching) live beside it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import paths
from ..atomic import atomic_dir
from ..config import DataConfig
from ..errors import DataError
from . import pairs, tool_form
from .example import Example, Pair
from .fit_length import TRUNCATE, LengthFit, fit_to_length, prompt_length, tail_length
from .formats import NAMES
from .formats.base import RowError
from .mapping_hint import mapping_hint
from .readers import RowProblem, iter_records, parquet_class_names
from .render import IGNORE, ensure_chat_template, reasoning_policy
from .shapes import Shape, detect, detect_one, to_conversation
from .tool_parts import tool_parts

DETECT_ROWS = 50
MIN_ROWS = 2
RENDER_VERSION = 6  # bump when rendering changes: invalidates tokenized caches
MAX_ROW_CHARS = 4_000_000  # a row this long (~1M tokens) is refused without tokenizing it
TEXT_PLAN_TOKENS = 2048  # plain text is split into pieces: plan for pieces, not whole documents
REPORT_SKIPPED_MAX = 1000
# The field names of the formats' example records, for the message when none is recognised.


@dataclass
class Tokenized:
    """Every usable row of a file, unsplit; what the cache stores."""

    ids: np.ndarray
    trained: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray
    meta: dict[str, Any]

    def sequence(self, k: int, row: int) -> Example:
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        return Example(row, self.ids[a:b], self.trained[a:b])

    def example(self, i: int) -> Example | Pair:
        row = int(self.rows[i])
        if self.meta.get("pairs"):  # a preference row: its chosen sequence, then its rejected one (data/pairs.py)
            return Pair(row, self.sequence(2 * i, row), self.sequence(2 * i + 1, row))
        return self.sequence(i, row)

    def lengths(self) -> np.ndarray:
        """Tokens per row; a pair's longer sequence (what a padded batch and the plan hold)."""
        d = np.diff(self.offsets)
        return pairs.longest(d) if self.meta.get("pairs") else d

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class PreparedData:
    shape: Shape
    train: list[Example | Pair]
    val: list[Example | Pair]
    rows: int
    skipped: list[RowProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    template_is_own: bool = True
    samples: list[dict] = field(default_factory=list)
    """The first rendered rows: {row, text, spans, tokens, trained, parts (tool_parts.py)}."""
    reasoning: str = "none"
    """What happened to chains of thought: none (no reasoning in the data) | think | inline | drop."""
    lengths: np.ndarray | None = None
    """Token lengths of every kept row, whole (what the planner sizes the run for)."""
    from_cache: bool = False
    whole_train: list[Example | Pair] = field(default_factory=list)
    whole_val: list[Example | Pair] = field(default_factory=list)
    length_fit: LengthFit | None = None
    """What fitting the rows to the run's length did (truncated, split, skipped)."""
    references: dict[int, str] = field(default_factory=dict)
    """GRPO (engine/data/prompts.py): each row's reference answer, by row; the rows are its prompts."""

    def __post_init__(self) -> None:
        self.whole_train, self.whole_val = list(self.train), list(self.val)
        self._read_skipped = list(self.skipped)  # what reading the file skipped; fitting adds its own

    @property
    def pairs(self) -> bool:
        """Preference rows (a chosen and a rejected answer each): `Pair`s, not `Example`s."""
        return bool(self.whole_train or self.whole_val) and isinstance((self.whole_train or self.whole_val)[0], Pair)

    def use_chosen(self) -> None:
        """Train by imitation on a preference file: each row's chosen answer becomes its example."""
        self.train, self.val = pairs.chosen_only(self.train), pairs.chosen_only(self.val)
        self.whole_train, self.whole_val = pairs.chosen_only(self.whole_train), pairs.chosen_only(self.whole_val)

    def plan_inputs(self) -> dict[str, Any]:
        """What the planner sizes a run for (planner.resolve's keywords): the rows' lengths
        (plain text is split into pieces anyway, so it is planned for pieces), per row the
        tokens from its last answer's start (what truncation keeps whole; nothing for
        text), and the training rows (an epoch is at least one step)."""
        lengths = self.lengths
        text = self.shape.spec.plain_text
        if lengths is not None and text:
            lengths = np.minimum(lengths, TEXT_PLAN_TOKENS)
        tails = np.zeros(len(self.whole_train), np.int64) if text else pairs.tails(self.whole_train) if self.pairs else np.array(
            [tail_length(e) for e in self.whole_train], dtype=np.int64)
        # GRPO plans for each prompt plus its sampled answer (engine/data/prompts.py).
        prompts = np.array([prompt_length(e) for e in self.whole_train + self.whole_val], dtype=np.int64)
        return {"lengths": lengths, "tails": tails, "train_rows": len(self.whole_train), "prompts": prompts}

    def fit_length(self, limit: int, policy: str = TRUNCATE) -> LengthFit:
        """Fit every row to `limit` tokens (from the whole rows, so a shorter limit after
        an out-of-memory error starts from the same data): train and validation alike."""
        text = self.shape.spec.plain_text
        if self.pairs:  # each side fitted as a chat row; a pair is kept or left out whole
            train, val = pairs.fit_pairs(self.whole_train, limit, policy), pairs.fit_pairs(self.whole_val, limit, policy)
        else:
            train = fit_to_length(self.whole_train, limit, policy, split_text=text)
            val = fit_to_length(self.whole_val, limit, policy, split_text=text)
        self.train, self.val = train.examples, val.examples
        self.skipped = self._read_skipped + train.problems + val.problems
        self.length_fit = train.merged(val)
        return self.length_fit

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
            "skipped": [{"row": p.row, "reason": p.reason} for p in self.skipped[:REPORT_SKIPPED_MAX]],
            "skipped_by_kind": dict(Counter(p.kind for p in self.skipped)),
            "notes": list(self.notes),
            "reasoning": self.reasoning,
            "trained_tokens": int(sum(int(e.trained.sum()) for e in self.train)),
            "length": self.length_fit.to_dict() if self.length_fit else None,
        }


# -- shape -------------------------------------------------------------------------------
def records(cfg: DataConfig, notes: list[str] | None = None) -> Iterator[tuple[int, Any]]:
    """(row, record | RowProblem) of the dataset: a file's (readers.py), or a Hub dataset's (hub.py)."""
    if cfg.from_hub:
        from . import hub

        return hub.iter_records(hub.HubSource.of(cfg), notes)
    return iter_records(Path(cfg.path), notes)


def source_name(cfg: DataConfig) -> str:
    """How messages name the dataset: a file by its name, a Hub dataset by its id."""
    return cfg.path if cfg.from_hub else Path(cfg.path).name


def _class_names(cfg: DataConfig) -> dict[str, list[str]]:
    """{column: names} of the source's ClassLabel features (a Hub dataset, a Parquet file from `datasets`)."""
    if cfg.from_hub:
        from . import hub

        return hub.class_names(hub.HubSource.of(cfg))
    return parquet_class_names(Path(cfg.path)) if Path(cfg.path).suffix.lower() == ".parquet" else {}


def _settle(cfg: DataConfig, shape: Shape, notes: list[str]) -> Shape:
    """A format that needs the whole dataset (the labeled format's label names) reads it once here."""
    if shape.spec.settle is None:
        return shape
    settings = {"labels": cfg.labels, "instruction": cfg.instruction,
                "class_names": _class_names(cfg).get(shape.mapping.get("label", ""))}
    rows = (r for _, r in records(cfg) if isinstance(r, dict))
    try:
        options, more = shape.spec.settle(shape.mapping, rows, settings)
    except ValueError as e:
        raise DataError(f"{source_name(cfg)}: {e}") from None
    notes += more
    return Shape(shape.format, shape.mapping, options)


def resolve_shape(cfg: DataConfig, notes: list[str]) -> Shape:
    name = source_name(cfg)
    head = [r for _, r in itertools.islice(records(cfg, notes), DETECT_ROWS)]
    sample = [r for r in head if not isinstance(r, RowProblem)]
    if not head:
        raise DataError(f"{name}: the file holds no records (an empty list); nothing to train on")
    if not sample:
        problem = next((f"; e.g. row {r.row}: {r.reason}" for r in head if isinstance(r, RowProblem)), "")
        raise DataError(f"{name}: no readable records in the first {DETECT_ROWS} rows{problem}")
    fields = sorted({k for r in sample for k in r})
    columns = list(dict.fromkeys(k for r in sample for k in r))  # file order, for the message
    detected = detect(sample)
    if cfg.format:
        if cfg.format not in NAMES:
            raise DataError(f"unknown data format '{cfg.format}'; use one of {', '.join(NAMES)}")
        base = dict(detected.mapping) if detected and detected.format == cfg.format else {}
        shape = Shape(cfg.format, {**base, **(cfg.mapping or {})})
    elif cfg.mapping:
        if detected is None:
            raise DataError(mapping_hint(name, columns, fmt=None, given=cfg.mapping))
        shape = Shape(detected.format, {**detected.mapping, **cfg.mapping})
    elif detected is None:
        raise DataError(mapping_hint(name, columns, fmt=None, given=None))
    else:
        shape = detected
        kinds = Counter(s.format for s in map(detect_one, sample) if s is not None)
        if len(kinds) > 1:
            notes.append(
                "mixed record shapes in the first rows ("
                + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
                + f"); using {shape.format}, other rows are skipped"
            )
    missing = [r for r in shape.spec.required if r not in shape.mapping]
    if missing:
        raise DataError(mapping_hint(name, columns, fmt=shape.format, given=cfg.mapping, detected=detected))
    absent = [f"'{v}'" for v in shape.mapping.values() if v not in fields]
    if absent:
        raise DataError(f"{name}: field {', '.join(absent)} is not in the file; its fields are: {', '.join(fields[:20])}")
    return _settle(cfg, shape, notes)


# -- tokenizing ----------------------------------------------------------------------------
def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update(backend.to_str().encode() if backend is not None else repr(sorted(tokenizer.get_vocab().items())).encode())
    for part in (tokenizer.chat_template or "", tokenizer.eos_token or "", tokenizer.bos_token or ""):
        h.update(b"\0" + str(part).encode())
    return h.hexdigest()[:16]


def _cache_key(cfg: DataConfig, shape: Shape, tokenizer) -> str:
    settings = json.dumps(
        [RENDER_VERSION, shape.to_dict(), cfg.system_prompt, cfg.reasoning], sort_keys=True
    )
    if cfg.from_hub:
        from . import hub

        source = "hub:" + hub.fingerprint(hub.HubSource.of(cfg))
    else:
        source = _file_hash(Path(cfg.path))
    h = hashlib.sha256(f"{source}|{tokenizer_fingerprint(tokenizer)}|{settings}".encode())
    return h.hexdigest()[:24]


def _conversations(cfg: DataConfig, shape: Shape) -> Iterator[tuple[int, Any]]:
    """(row, conversation | RowProblem) for every record, duplicates already caught."""
    seen: dict[bytes, int] = {}
    for row, record in records(cfg):
        if isinstance(record, RowProblem):
            yield row, record
            continue
        try:
            messages = to_conversation(record, shape)
        except RowError as e:
            yield row, RowProblem(row, str(e), e.kind)
            continue
        digest = hashlib.blake2b(json.dumps(messages, sort_keys=True).encode(), digest_size=16).digest()
        if digest in seen:
            yield row, RowProblem(row, f"exact duplicate of row {seen[digest]}", "duplicate")
            continue
        seen[digest] = row
        _, rest = tool_form.split_tools(messages)
        if cfg.system_prompt and rest[0]["role"] not in ("system", "text"):
            messages = messages[: len(messages) - len(rest)] + [{"role": "system", "content": cfg.system_prompt}] + rest
        yield row, messages


def tokenize_file(cfg: DataConfig, shape: Shape, tokenizer, notes: list[str]) -> Tokenized:
    """Every row whole: fitting rows to a length is the plan's business (PreparedData.fit_length)."""
    ids: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    rows: list[int] = []
    skipped: list[RowProblem] = []
    samples: list[dict] = []
    total = 0
    with_reasoning = with_tools = 0
    for row, conv in _conversations(cfg, shape):
        total += 1
        if isinstance(conv, RowProblem):
            skipped.append(conv)
            continue
        chars = sum(len(m.get("content", "")) + len(m.get("reasoning", "")) + tool_form.chars(m) for m in conv)
        if chars > MAX_ROW_CHARS:
            skipped.append(RowProblem(row, f"too long: {chars:,} characters (at most {MAX_ROW_CHARS:,} per row)", "too long"))
            continue
        with_reasoning += any(m.get("reasoning") for m in conv)
        with_tools += any(m["role"] == "tools" or m.get("tool_calls") for m in conv)
        try:  # a preference row renders twice: its chosen answer, then its rejected one (data/pairs.py)
            rendered = pairs.render_row(tokenizer, conv, cfg.reasoning)
        except Exception as e:  # templates raise on role orders they do not accept
            skipped.append(RowProblem(row, f"the chat template cannot render this row ({str(e)[:200]})", "template"))
            continue
        row_ids = [np.asarray(r.input_ids, dtype=np.int32) for r in rendered]
        row_mask = [np.asarray(r.labels, dtype=np.int64) != IGNORE for r in rendered]
        if not all(m.any() for m in row_mask):
            side = " of the rejected answer" if row_mask[0].any() else ""
            skipped.append(RowProblem(row, f"no answer tokens{side} to train on", "empty field"))
            continue
        if len(samples) < 3:
            samples.append(pairs.sample(row, rendered, row_mask,
                                        tool_parts(tokenizer, conv, rendered[0].text, reasoning=cfg.reasoning)))
        if all(len(x) > 1 for x in row_ids):
            ids += row_ids
            masks += row_mask
            rows.append(row)
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    if ids:
        np.cumsum([len(a) for a in ids], out=offsets[1:])
    meta = {
        "rows": total,
        "skipped": [[p.row, p.reason, p.kind] for p in skipped],
        "samples": samples,
        "notes": notes,
        "with_reasoning": with_reasoning,
        "with_tools": with_tools,
        "pairs": shape.spec.preference,
    }
    return Tokenized(
        np.concatenate(ids) if ids else np.zeros(0, np.int32),
        np.concatenate(masks) if masks else np.zeros(0, bool),
        offsets,
        np.asarray(rows, dtype=np.int64),
        meta,
    )


def _save(tok: Tokenized, folder: Path) -> None:
    with atomic_dir(folder) as tmp:
        for name in ("ids", "trained", "offsets", "rows"):
            np.save(tmp / f"{name}.npy", getattr(tok, name))
        (tmp / "meta.json").write_text(json.dumps(tok.meta, ensure_ascii=False), encoding="utf-8")


def _load(folder: Path) -> Tokenized | None:
    try:
        arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in ("ids", "trained", "offsets", "rows")}
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Tokenized(meta=meta, **arrays)


# -- policy and split ----------------------------------------------------------------------
def _check_enough(cfg: DataConfig, tok: Tokenized, skipped: list[RowProblem]) -> None:
    name = source_name(cfg)
    bad = [p for p in skipped if p.kind != "duplicate"]
    kept = len(set(tok.rows.tolist()))
    total = tok.meta["rows"]
    if kept >= MIN_ROWS and len(bad) <= total * cfg.max_bad_share:
        return
    by_kind: dict[str, list[int]] = {}
    for p in skipped:
        by_kind.setdefault(p.kind, []).append(p.row)
    summary = "; ".join(
        f"{len(rows)} {kind} (row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:3]))}{'…' if len(rows) > 3 else ''})"
        for kind, rows in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))
    )
    first = next((f"; e.g. row {p.row}: {p.reason}" for p in bad[:1]), "")
    why = f"Skipped: {summary}{first}" if summary else f"At least {MIN_ROWS} are needed"
    raise DataError(f"{name}: only {kept} usable row(s) of {total}, too few to train on. {why}")


def prepare(cfg: DataConfig, tokenizer, *, shape: Shape | None = None) -> PreparedData:
    notes: list[str] = []
    shape = shape or resolve_shape(cfg, notes)
    template_is_own = ensure_chat_template(tokenizer)
    if not template_is_own:
        notes.append("the tokenizer has no chat template; a plain ChatML layout is used")
    tok = None
    folder = None
    if cfg.cache:
        folder = paths.cache_dir() / "data" / _cache_key(cfg, shape, tokenizer)
        tok = _load(folder) if (folder / "meta.json").is_file() else None
    from_cache = tok is not None
    if tok is None:
        tok = tokenize_file(cfg, shape, tokenizer, notes)
        if folder is not None:
            _save(tok, folder)
    else:
        notes = list(dict.fromkeys(notes + tok.meta["notes"]))
    skipped = [RowProblem(r, reason, kind) for r, reason, kind in tok.meta["skipped"]]
    _check_enough(cfg, tok, skipped)

    reasoning = "none"
    if tok.meta["with_reasoning"]:
        reasoning = reasoning_policy(tokenizer, cfg.reasoning)
        notes.append(
            {
                "think": f"{tok.meta['with_reasoning']} row(s) carry a chain of thought: trained inside <think>…</think>, as this reasoning model expects",
                "inline": f"{tok.meta['with_reasoning']} row(s) carry a chain of thought: kept inline in <think> tags before the answer (reasoning=keep)",
                "drop": f"{tok.meta['with_reasoning']} row(s) carry a chain of thought: dropped, this model's chat template is not a reasoning one (reasoning=keep trains it inline)",
            }[reasoning]
        )

    if tok.meta["with_tools"]:
        notes.append(tool_form.note(tokenizer, tok.meta["with_tools"]))

    order = list(range(len(tok)))
    random.Random(cfg.seed).shuffle(order)
    if cfg.max_samples:
        order = order[: cfg.max_samples]
    n_val = 0
    if cfg.val_share > 0 and len(order) > 1:
        n_val = max(cfg.min_val_rows, min(cfg.max_val_rows, round(len(order) * cfg.val_share)))
        n_val = min(n_val, len(order) - 1)
    examples = [tok.example(i) for i in order]
    data = PreparedData(
        shape=shape,
        train=examples[n_val:],
        val=examples[:n_val],
        rows=int(tok.meta["rows"]),
        skipped=skipped,
        notes=notes,
        template_is_own=template_is_own,
        samples=tok.meta["samples"],
        reasoning=reasoning,
        lengths=tok.lengths()[order],
        from_cache=from_cache,
    )
    if cfg.max_seq_len:  # the user's own length: applied here, so inspect shows it too
        fit = data.fit_length(cfg.max_seq_len, cfg.long_rows)
        if fit.sentence():
            data.notes.append(fit.sentence())
    return data
