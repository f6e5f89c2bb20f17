"""An IMDB-shaped sentiment set for the labeled-data tests and the accuracy demo: short
film reviews made from phrases (written for TuneDesk, not taken from anywhere), a `text`
column and a ClassLabel `label` column (0 neg, 1 pos), as `datasets` writes IMDB to Parquet."""

from __future__ import annotations

import json
import random
from pathlib import Path

NAMES = ["neg", "pos"]
FILMS = ["This film", "The movie", "This sequel", "The remake", "This documentary", "The new thriller",
         "This comedy", "The animated feature", "This drama", "The director's latest"]
GOOD = ["was a delight from start to finish", "moved me to tears in the best way", "is a masterpiece",
        "had superb acting and a clever story", "was funny, warm and beautifully shot", "is the best I saw this year",
        "kept me gripped until the end", "left me smiling for days", "was wonderful", "deserves every award"]
BAD = ["was a waste of two hours", "bored me to sleep", "is a mess", "had wooden acting and a silly plot",
       "was dull, slow and badly shot", "is the worst I saw this year", "made no sense at all",
       "left me angry I paid for it", "was awful", "deserves to be forgotten"]
GOOD_END = ["Highly recommended.", "I loved it.", "Go and see it.", "A real gem.", "Ten out of ten."]
BAD_END = ["Avoid it.", "I hated it.", "Skip this one.", "A total flop.", "One out of ten."]
MIDDLE = ["The music is by a famous composer.", "It runs for about two hours.", "My friend chose it.",
          "I watched it on a Sunday.", "It is set in a small town.", ""]


def rows(n: int = 300, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:  # every review once: duplicates would be skipped (and listed)
        label = len(out) % 2
        body = [rng.choice(FILMS) + " " + rng.choice(GOOD if label else BAD) + ".", rng.choice(MIDDLE),
                rng.choice(GOOD_END if label else BAD_END)]
        text = " ".join(x for x in body if x)
        if text not in seen:
            seen.add(text)
            out.append({"text": text, "label": label})
    rng.shuffle(out)
    return out


def features_metadata() -> bytes:
    """The schema metadata `datasets` writes: text a string, label a ClassLabel."""
    return json.dumps({"info": {"features": {"text": {"dtype": "string", "_type": "Value"},
                                             "label": {"names": NAMES, "_type": "ClassLabel"}}}}).encode()


def write_parquet(path: Path, n: int = 300, seed: int = 0) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows(n, seed), schema=pa.schema(
        [("text", pa.string()), ("label", pa.int64())], metadata={b"huggingface": features_metadata()}))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


CARD = """---
configs:
- config_name: plain_text
  default: true
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
dataset_info:
- config_name: plain_text
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': neg
          '1': pos
---
# Reviews, IMDB-shaped (made for TuneDesk's tests)
"""


def write_hub_folder(folder: Path, n: int = 300) -> Path:
    """A folder laid out like the IMDB repository on the Hub: Parquet shards under data/ and
    a dataset card naming the configuration, its splits and the ClassLabel."""
    half = n // 2
    write_parquet(folder / "data" / "train-00000-of-00002.parquet", half, seed=1)
    write_parquet(folder / "data" / "train-00001-of-00002.parquet", n - half, seed=2)
    write_parquet(folder / "data" / "test-00000-of-00001.parquet", 40, seed=3)
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    return folder
