"""Hub datasets through `datasets`, offline: folders laid out like Hub repositories (Parquet
and JSON shards under data/, a dataset card with configurations and a ClassLabel) go
through engine/data/hub.py, the same code an owner/name id goes through (only the string
given to `datasets.load_dataset` differs), then through the same detection, validation and
row-level messages as a file. An owner/name id is tested where no network is needed: the
one-line message when the Hub cannot be reached (conftest sets HF_HUB_OFFLINE)."""

from __future__ import annotations

import json

import pytest
from sentiment import write_hub_folder

from engine.cli import build_parser, train_config
from engine.config import DataConfig, RunConfig
from engine.data import hub, prepare
from engine.data.prepare import resolve_shape
from engine.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _fresh():
    hub.forget()  # each test fetches its own folders
    yield
    hub.forget()


@pytest.fixture
def imdb_folder(tmp_path):
    return write_hub_folder(tmp_path / "imdb", n=60)


@pytest.fixture
def json_folder(tmp_path):
    """String labels in JSON Lines shards; row 3 has no label."""
    folder = tmp_path / "reviews"
    (folder / "data").mkdir(parents=True)
    rows = [{"review": f"Review number {i}, {'great' if i % 2 else 'dull'}.", "sentiment": "positive" if i % 2 else "negative"}
            for i in range(1, 13)]
    rows[2]["sentiment"] = None
    for shard, part in enumerate((rows[:6], rows[6:])):
        (folder / "data" / f"train-{shard:05d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return folder


def _hub(path, **kw) -> DataConfig:
    return DataConfig(path=str(path), from_hub=True, **kw)


def test_a_hub_layout_folder_reads_its_shards_card_and_classlabel(imdb_folder, demo_tokenizer):
    notes: list[str] = []
    shape = resolve_shape(_hub(imdb_folder), notes)
    assert shape.format == "labeled" and shape.mapping == {"text": "text", "label": "label"}
    assert shape.options["labels"] == ["neg", "pos"] and shape.options["numbered"]
    assert shape.options["instruction"] == "Classify this text as one of: neg, pos."
    assert any("ClassLabel names" in n for n in notes)
    data = prepare(_hub(imdb_folder, val_share=0.1), demo_tokenizer)
    assert data.rows == 60 and data.kept == 60  # both train shards
    assert "Classify this text as one of: neg, pos." in data.samples[0]["text"]
    assert prepare(_hub(imdb_folder, hub_split="test"), demo_tokenizer).rows == 40


def test_max_samples_streams_only_the_first_rows(imdb_folder):
    rows = hub.fetch(hub.HubSource(str(imdb_folder), max_samples=7))
    assert isinstance(rows.records, list) and len(rows.records) == 7
    assert rows.class_names == {"label": ["neg", "pos"]}
    seen: list[tuple[int, int]] = []
    hub.forget()
    hub.fetch(hub.HubSource(str(imdb_folder), max_samples=60), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (60, 60) and seen[0] == (50, 60)


def test_cancelling_a_stream_stops_it(imdb_folder):
    with pytest.raises(hub.Cancelled):
        hub.fetch(hub.HubSource(str(imdb_folder), max_samples=50), cancelled=lambda: True)


def test_string_labels_and_a_bad_row_get_the_files_row_messages(json_folder, demo_tokenizer):
    data = prepare(_hub(json_folder, val_share=0.0), demo_tokenizer)
    assert data.shape.format == "labeled" and data.shape.options["labels"] == ["negative", "positive"]
    assert data.shape.options["instruction"] == "Classify the sentiment of this review as one of: negative, positive."
    assert [(p.row, p.reason) for p in data.skipped] == [(3, "missing label field 'sentiment'")]
    assert data.kept == 11


@pytest.mark.parametrize("kw, message", [
    ({"hub_config": "nope"}, "has no configuration 'nope'; its configurations: plain_text (--config)"),
    ({"hub_split": "validation"}, "has no split 'validation'; its splits: train, test (--split)"),
])
def test_a_wrong_configuration_or_split_is_one_sentence_naming_the_right_ones(imdb_folder, kw, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_shape(_hub(imdb_folder, **kw), [])


def test_offline_a_hub_id_is_one_plain_line():
    with pytest.raises(DataError) as e:
        resolve_shape(_hub("someone/not-here"), [])
    assert str(e.value) == ("Could not reach the Hugging Face Hub to fetch someone/not-here (offline?). "
                            "Download it on a machine with internet or give a local file.")


def test_a_loading_script_is_refused(tmp_path):
    folder = tmp_path / "scripted"
    folder.mkdir()
    (folder / "scripted.py").write_text("raise SystemExit('this must never run')\n")
    with pytest.raises(DataError, match="loading script"):
        resolve_shape(_hub(folder), [])


def test_an_existing_path_wins_over_an_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").write_text('{"question": "q", "answer": "a"}\n')
    assert not hub.is_hub_source("owner/name")  # a file of that name
    assert hub.is_hub_source("stanfordnlp/imdb") and hub.is_hub_source("imdb")
    assert not hub.is_hub_source(str(tmp_path / "owner"))  # a folder of files: the readers say "is a folder"
    (tmp_path / "owner" / "data").mkdir()
    assert hub.is_hub_source(str(tmp_path / "owner"))  # laid out like a Hub repository: read through datasets
    assert not hub.is_hub_source("missing.jsonl") and not hub.is_hub_source("owner/data.csv.gz")


def test_the_request_records_the_hub_source_for_resume_and_train_again():
    a = build_parser().parse_args(["train", "stanfordnlp/imdb", "--config", "plain_text", "--split", "test",
                                   "--max-samples", "500", "--labels", "negative,positive", "--instruction", "Say it."])
    cfg = train_config(a)
    d = cfg.data
    assert (d.path, d.from_hub, d.hub_config, d.hub_split, d.max_samples) == ("stanfordnlp/imdb", True, "plain_text", "test", 500)
    assert d.labels == ["negative", "positive"] and d.instruction == "Say it."
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).for_new_run("")
    assert again.data == d
    with pytest.raises(ConfigError, match="only for Hub datasets"):
        train_config(build_parser().parse_args(["train", "local.jsonl", "--split", "test"]))


def test_cli_inspect_of_a_hub_folder_and_of_an_unreachable_id(imdb_folder, capsys):
    from engine.cli import main  # in this process: a subprocess would import torch again (seconds on 2 cores)

    assert main(["inspect", str(imdb_folder), "--split", "test", "--max-samples", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "labeled" and report["labels"] == ["neg", "pos"] and report["rows"] == 10
    assert main(["inspect", "someone/not-here"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        "tunedesk inspect: error: Could not reach the Hugging Face Hub to fetch someone/not-here (offline?). "
        "Download it on a machine with internet or give a local file.")
