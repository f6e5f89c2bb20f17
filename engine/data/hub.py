"""Datasets from the Hugging Face Hub (owner/name) or a folder laid out like a Hub dataset
repository (data files, a README.md card with `configs:` and features), read through the
`datasets` library, as the tutorials do with `load_dataset("imdb")`.

The rows then go through exactly what a local file's rows go through (prepare.py asks
`iter_records` here instead of readers.iter_records): the same detection, preview,
validation and row-level messages; a row is its 1-based place in the split. With
`max_samples` only the first N rows are streamed (a 25 GB dataset is not downloaded to
take 500 rows); otherwise the split is downloaded once into `datasets`' own cache, which
also serves it offline later.

`datasets` is imported only here, and only when used (it takes over a second). Dataset
loading scripts (Python code in a repository) are never run: `datasets` refuses them,
and so do we, with a plain message. Every failure (offline, not found, no such
configuration or split) becomes one DataError sentence, never a traceback.

A fetched split is kept in memory for the process (two at most), so detection, the label
scan, tokenizing, and a training started from the window read the Hub once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import DataError
from .readers import SUPPORTED

HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
DEFAULT_SPLIT = "train"
MEDIA = ("Image", "Audio", "Video", "Pdf", "Nifti")  # not text: left out rather than decoded
KEEP = 2
PROGRESS_EVERY = 50
_fetched: OrderedDict[Any, "HubRows"] = OrderedDict()
_lock = threading.Lock()


class Cancelled(DataError):
    """The user cancelled the download."""


def is_hub_source(text: str) -> bool:
    """Whether `text` names a dataset for `datasets` rather than a file: a folder laid out
    like a Hub repository (a README.md dataset card or a data/ folder; any other folder is
    the file readers' "is a folder"), or, when no such file exists, an id (owner/name, or a
    bare name without a dataset file's suffix). An existing path always wins."""
    path = Path(text).expanduser()
    if path.is_dir():
        return (path / "README.md").is_file() or (path / "data").is_dir()
    if path.exists():
        return False
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if any(s in SUPPORTED or s == ".gz" for s in suffixes):
        return False
    return bool(HUB_ID.match(text))


@dataclass(frozen=True)
class HubSource:
    id: str
    """owner/name, or a local folder laid out like a Hub dataset repository."""
    config: str | None = None
    split: str = DEFAULT_SPLIT
    max_samples: int | None = None

    @classmethod
    def of(cls, data_cfg) -> "HubSource":
        d = data_cfg
        return cls(d.path, d.hub_config or None, d.hub_split or DEFAULT_SPLIT, d.max_samples)

    @property
    def local(self) -> bool:
        return Path(self.id).expanduser().is_dir()

    def describe(self) -> str:
        parts = [p for p in (self.config, f"split {self.split}",
                             f"first {self.max_samples:,} rows" if self.max_samples else "") if p]
        return f"{self.id} ({', '.join(parts)})"


@dataclass
class HubRows:
    records: Sequence[dict]
    """A list (streamed rows) or a `datasets.Dataset` (memory-mapped from its cache)."""
    class_names: dict[str, list[str]] = field(default_factory=dict)
    """{column: names} of the ClassLabel features."""
    fingerprint: str = ""
    """Changes when the rows do: the key of the tokenized cache."""


def iter_records(src: HubSource, notes: list[str] | None = None) -> Iterator[tuple[int, Any]]:
    rows = fetch(src)
    for i, record in enumerate(rows.records, 1):
        yield i, record


def class_names(src: HubSource) -> dict[str, list[str]]:
    return fetch(src).class_names


def fingerprint(src: HubSource) -> str:
    return fetch(src).fingerprint


def fetch(src: HubSource, *, status: Callable[[str], None] = lambda _: None,
          progress: Callable[[int, int], None] = lambda done, total: None,
          cancelled: Callable[[], bool] = lambda: False) -> HubRows:
    """The split's rows (the first `max_samples` streamed), fetched once per process.
    `progress(done, total)` counts streamed rows (total 0: unknown); `cancelled()` True
    stops a stream between rows."""
    with _lock:
        if src in _fetched:
            _fetched.move_to_end(src)
            return _fetched[src]
    rows = _load(src, status, progress, cancelled)
    with _lock:
        _fetched[src] = rows
        while len(_fetched) > KEEP:
            _fetched.popitem(last=False)
    return rows


def forget() -> None:
    """Drop the splits kept in memory (tests; a dataset edited on disk)."""
    with _lock:
        _fetched.clear()


def _quiet(datasets) -> None:
    # Progress bars and retry chatter are not for users: status() says what happens.
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def _load(src: HubSource, status, progress, cancelled) -> HubRows:
    status(f"Loading datasets for {src.describe()}…")
    import datasets  # slow to import: only when a Hub dataset is used

    _quiet(datasets)
    status(f"Fetching {src.describe()}{' from the Hugging Face Hub' if not src.local else ''}…")
    path = str(Path(src.id).expanduser()) if src.local else src.id
    try:
        # trust_remote_code is never passed: a repository's Python code does not run here.
        ds = datasets.load_dataset(path, src.config, split=src.split, streaming=bool(src.max_samples))
        names = {k: list(f.names) for k, f in (ds.features or {}).items() if isinstance(f, datasets.ClassLabel)}
        media = [k for k, f in (ds.features or {}).items() if type(f).__name__ in MEDIA]
        if media:
            ds = ds.remove_columns(media)
        if src.max_samples:
            records: list[dict] = []
            for record in ds:
                records.append(record)
                if len(records) % PROGRESS_EVERY == 0 or len(records) == src.max_samples:
                    progress(len(records), src.max_samples)
                if len(records) >= src.max_samples:
                    break
                if cancelled():
                    raise Cancelled(f"{src.id}: cancelled")
            text = json.dumps(records, sort_keys=True, default=str, ensure_ascii=False)
            digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
            return HubRows(records, names, digest)
        progress(len(ds), len(ds))
        digest = getattr(ds, "_fingerprint", "") or hashlib.blake2b(repr(ds).encode(), digest_size=16).hexdigest()
        return HubRows(ds, names, f"{digest}-{len(ds)}")
    except DataError:
        raise
    except Exception as e:
        raise _explain(src, e, datasets) from None


def _explain(src: HubSource, e: Exception, datasets) -> DataError:
    """One sentence for the user about why `datasets` could not give the rows."""
    name, text = type(e).__name__, str(e)
    where = "this folder" if src.local else "the Hugging Face Hub"
    if "script" in text.lower() and ("no longer supported" in text or "trust_remote_code" in text):
        return DataError(f"{src.id}: this dataset is a loading script (Python code), which TuneDesk does not run; "
                         "use a dataset published as data files (Parquet, JSON, CSV)")
    offline = ("Offline", "Connect", "Timeout", "LocalEntryNotFound")
    if isinstance(e, ConnectionError) or any(w in name for w in offline):
        return DataError(f"Could not reach the Hugging Face Hub to fetch {src.id} (offline?). "
                         "Download it on a machine with internet or give a local file.")
    if name in ("DatasetNotFoundError", "RepositoryNotFoundError", "GatedRepoError"):
        return DataError(f"{src.id}: no such file here, and no dataset of that name on the Hugging Face Hub "
                         "(check the name; a private or gated dataset needs `hf auth login`)")
    if name in ("DataFilesNotFoundError", "EmptyDatasetError") or (src.local and isinstance(e, FileNotFoundError)):
        return DataError(f"{src.id}: no data files (Parquet, JSON, CSV, TXT) found in {where}")
    if isinstance(e, ValueError):
        path = str(Path(src.id).expanduser()) if src.local else src.id
        configs = ", ".join(_try(lambda: datasets.get_dataset_config_names(path)))
        if "config" in text.lower() and configs:
            if src.config is None:
                return DataError(f"{src.id} has several configurations; choose one with --config: {configs}")
            return DataError(f"{src.id} has no configuration '{src.config}'; its configurations: {configs} (--config)")
        if "split" in text.lower():
            splits = _try(lambda: datasets.get_dataset_split_names(path, src.config))
            if splits:
                return DataError(f"{src.id} has no split '{src.split}'; its splits: {', '.join(splits)} (--split)")
    first = text.splitlines()[0][:200] if text else ""
    return DataError(f"{src.id}: cannot be read through `datasets` ({name}: {first})")


def _try(fn):
    try:
        return list(fn())
    except Exception:
        return []
