"""A newcomer's first hour (issue 18, part 3): runs by name, the runs list, resume of a
finished run, results on stdout and messages on stderr, the one mapping message, CSV
delimiters, honest --help, and doctor's window check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES, tunedesk

from engine.config import DataConfig, RunConfig
from engine.data.prepare import resolve_shape
from engine.data.readers import iter_records
from engine.doctor import format_checks, missing_libraries, window_check
from engine.errors import DataError, TuneDeskError
from engine.runs import RunDir, find_run


def _run(root, name, status="finished", steps=30, losses=(2.345678, 1.23456789), evals=(1.9, 1.7654321, 1.8)):
    """A run folder as training leaves it: config, metrics and summary (real files)."""
    cfg = RunConfig()
    cfg.data.path, cfg.out_dir, cfg.name = str(SAMPLES / "pirate_trivia.jsonl"), str(root), name
    run = RunDir.create(cfg, model_name="demo")
    run.write_config(cfg)
    for i, loss in enumerate(losses, 1):
        run.log_metrics({"step": i, "loss": loss})
    for i, ev in enumerate(evals, 1):
        run.log_metrics({"step": i, "eval_loss": ev})
    if status != "running":
        run.write_summary({"status": status, "steps": steps, "total_steps": steps, "train_loss": losses[-1],
                           "eval_loss": evals[-1] if evals else None, "duration_s": 12.0})
    if status == "finished":  # the adapter's files as peft writes them (only their presence counts here)
        run.adapter_dir.mkdir()
        (run.adapter_dir / "adapter_config.json").write_text("{}", encoding="utf-8")
    return run


# -- one resolver for every command that takes a run ----------------------------------------
def test_a_run_is_found_by_path_name_unique_part_or_last(tmp_path):
    a = _run(tmp_path, "20261201-pirates")
    b = _run(tmp_path, "20261202-nova")
    os.utime(a.path / "config.json", (1, 1))  # a is older
    assert find_run(a.path).path == a.path  # a folder, wherever it is
    assert find_run("20261202-nova", tmp_path).path == b.path  # the exact name
    assert find_run("pira", tmp_path).path == a.path  # a part only one run has
    assert find_run("last", tmp_path).path == b.path  # the newest
    with pytest.raises(TuneDeskError, match=r"'2026120' matches 2 runs in .*: 20261201-pirates, 20261202-nova; give more"):
        find_run("2026120", tmp_path)
    with pytest.raises(TuneDeskError, match=r"no run named 'zebra' in .*`tunedesk runs` lists them"):
        find_run("zebra", tmp_path)
    with pytest.raises(TuneDeskError, match="it holds no runs yet"):
        find_run("zebra", tmp_path / "empty")
    with pytest.raises(TuneDeskError, match="not a TuneDesk run folder"):
        find_run(tmp_path)  # a folder that is not a run
    with pytest.raises(TuneDeskError, match="no such run folder"):
        find_run(tmp_path / "gone" / "run")


def test_a_name_is_a_run_name_even_where_a_folder_here_has_it(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run = _run(runs, "pirates")
    (tmp_path / "work" / "pirates").mkdir(parents=True)  # e.g. the user's dataset folder
    monkeypatch.chdir(tmp_path / "work")
    assert find_run("pirates", runs).path == run.path
    with pytest.raises(TuneDeskError, match="pirates: not a TuneDesk run folder .*, and no run of that name in"):
        find_run("pirates", tmp_path / "empty")


def test_runs_lists_the_runs_on_stdout_with_rounded_losses(tmp_path):
    _run(tmp_path, "pirates")
    _run(tmp_path, "stopped-one", status="stopped", steps=7, losses=(3.3333333,), evals=())
    r = tunedesk("runs", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "MODEL", "STEPS", "LAST", "LOSS", "BEST", "EVAL", "DATE"]
    row = next(line for line in lines if line.startswith("pirates")).split()
    assert row[:6] == ["pirates", "finished", "demo", "30/30", "1.235", "1.765"]  # 4 significant digits, best eval
    assert next(line for line in lines if line.startswith("stopped-one")).split()[:6] == [
        "stopped-one", "stopped", "demo", "7/7", "3.333", "-"]
    assert "2 run(s) in" in r.stderr and "2 run(s)" not in r.stdout  # the hint is a message, not the result
    rows = json.loads(tunedesk("runs", "--runs-dir", str(tmp_path), "--json", timeout=120).stdout)
    assert {x["name"] for x in rows} == {"pirates", "stopped-one"} and rows[0]["train_loss"] in (1.23456789, 3.3333333)
    empty = tunedesk("runs", "--runs-dir", str(tmp_path / "none"), timeout=120)
    assert empty.returncode == 0 and empty.stdout == "" and "No runs in" in empty.stderr


def test_commands_take_a_run_name_and_say_plainly_when_it_is_not_there(tmp_path):
    _run(tmp_path, "pirates")
    shown = tunedesk("show", "pira", "--runs-dir", str(tmp_path), timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("pirates  (finished)") and "train loss  1.235 (last)" in shown.stdout
    assert "eval loss   1.8 (last), 1.765 (best)" in shown.stdout and "tunedesk chat pirates" in shown.stdout
    for cmd in (["chat", "zebra", "--prompt", "hi"], ["compare", "zebra", "--prompt", "hi"], ["resume", "zebra"],
                ["export", "zebra", "--format", "adapter", "--out", str(tmp_path / "x")], ["show", "zebra"]):
        r = tunedesk(*cmd, "--runs-dir", str(tmp_path), timeout=120)
        assert r.returncode == 2 and f"tunedesk {cmd[0]}: error: no run named 'zebra'" in r.stderr, (cmd, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == ""


def test_resume_of_a_finished_run_says_so_and_how_to_train_more(tmp_path):
    run = _run(tmp_path, "pirates")
    r = tunedesk("resume", "pirates", "--runs-dir", str(tmp_path), timeout=120)
    assert r.returncode == 2
    assert "pirates already finished (30 steps, train loss 1.235); nothing to resume" in r.stderr
    assert f"tunedesk train --request {run.path / 'config.json'} --max-steps N" in r.stderr
    assert "no checkpoint" not in r.stderr


def test_train_request_takes_more_steps_for_a_new_run(tmp_path):
    from engine.cli import build_parser, train_config

    run = _run(tmp_path, "pirates")
    a = build_parser().parse_args(["train", "--request", str(run.path / "config.json"), "--max-steps", "60"])
    cfg = train_config(a)
    assert cfg.train.max_steps == 60 and cfg.data.path.endswith("pirate_trivia.jsonl")


def test_export_without_a_format_lists_the_formats(tmp_path):
    _run(tmp_path, "pirates")
    r = tunedesk("export", "pirates", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "out"), timeout=120)
    assert r.returncode == 2 and not (tmp_path / "out").exists()
    for name in ("adapter", "merged", "gguf", "ollama"):
        assert re.search(rf"^  {name} +\S", r.stderr, flags=re.M), r.stderr
    assert "tunedesk export pirates --format adapter --out DIR" in r.stderr


# -- results on stdout, progress on stderr --------------------------------------------------
def test_train_prints_its_result_on_stdout_and_progress_on_stderr(tmp_path, tiny_model_folder):
    r = tunedesk("train", str(SAMPLES / "pirate_trivia.jsonl"), "--model", str(tiny_model_folder), "--max-steps", "1",
                 "--out", str(tmp_path), "--name", "tiny", "--eval-every", "1", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.fullmatch(r"finished: 1 steps in \d+ s, train loss \d+\.\d{1,3}, eval loss \d+\.\d{1,3} -> .*tiny\n",
                        r.stdout), r.stdout
    assert "Reading pirate_trivia.jsonl" in r.stderr and "finished:" not in r.stderr
    assert re.search(r"step 1: eval loss \d+\.\d{1,3}$", r.stderr, flags=re.M)


def test_inspect_piped_keeps_the_report_on_stdout():
    r = tunedesk("inspect", str(SAMPLES / "pirate_trivia.jsonl"), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "alpaca" in r.stdout and "90" in r.stdout
    assert "alpaca" not in r.stderr  # the report is not duplicated into the messages
    as_json = json.loads(tunedesk("inspect", str(SAMPLES / "pirate_trivia.jsonl"), "--json", timeout=300).stdout)
    assert as_json["format"] == "alpaca"


# -- honest --help -------------------------------------------------------------------------
def test_help_names_every_file_type_and_the_export_formats():
    from engine.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for cmd in ("train", "inspect"):
        text = " ".join(sub[cmd].format_help().split())
        for ext in (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"):
            assert ext in text, (cmd, ext)
    export = " ".join(sub["export"].format_help().split())
    assert "required; without it the command lists these" in export and "ollama:" in export
    assert "runs" in sub and "show" in sub


# -- one message for a mapping ------------------------------------------------------------
# (fields no format knows: a review,sentiment file is labeled data now, detected on its own)
@pytest.mark.parametrize("fmt,mapping,why,add", [
    (None, None, "cannot tell the dataset's format from its fields", "Add --format pair --map prompt=frage --map answer=antwort"),
    (None, {"prompt": "frage"}, "cannot tell the dataset's format from its fields, so --map alone is not enough", "Add --format pair --map answer=antwort"),
    ("pair", None, "the pair format needs a field for prompt, answer", "Add --map prompt=frage --map answer=antwort"),
    ("pair", {"prompt": "frage"}, "the pair format needs a field for answer", "Add --map answer=antwort"),
])
def test_one_message_names_every_missing_flag(tmp_path, fmt, mapping, why, add):
    f = tmp_path / "fragen.csv"
    f.write_text('frage,antwort\n"Wie spät ist es, bitte?",Es ist drei Uhr am Nachmittag.\n"Wo ist der Bahnhof?",Gleich um die Ecke links.\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        resolve_shape(DataConfig(path=str(f), format=fmt, mapping=mapping), [])
    text = str(e.value)
    assert text.startswith(f"fragen.csv: {why}") and "(its fields: frage, antwort)" in text and add in text
    assert text.endswith("--format pair --map prompt=frage --map answer=antwort")  # a line ready to copy
    # ... and the line it offers works
    shape = resolve_shape(DataConfig(path=str(f), format="pair", mapping={"prompt": "frage", "answer": "antwort"}), [])
    assert shape.mapping == {"prompt": "frage", "answer": "antwort"}


# -- CSV delimiters ------------------------------------------------------------------------
@pytest.mark.parametrize("sep,name", [(",", None), (";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")])
def test_csv_delimiter_is_sniffed(tmp_path, sep, name):
    # values hold the other delimiters, so only the right one gives two columns on every row
    rows = [("question", "answer"), ("Capital of Peru?", "Lima, in the west; a big city"),
            ("2 + 2?", "4 | four"), ("Tabs?", "yes, they work; sure | ok")]
    f = tmp_path / "faq.csv"
    f.write_text("\n".join(sep.join(f'"{v}"' if sep in v else v for v in r) for r in rows) + "\n", encoding="utf-8")
    notes: list[str] = []
    records = [rec for _, rec in iter_records(f, notes)]
    assert records == [{"question": q, "answer": a} for q, a in rows[1:]]
    assert notes == ([] if name is None else [f"faq.csv: fields separated by {name}, not commas; read that way"])


def test_a_single_column_csv_stays_one_column(tmp_path):
    f = tmp_path / "notes.csv"
    f.write_text("text\nA line; with a semicolon | and a bar\nAnother\n", encoding="utf-8")
    assert [rec for _, rec in iter_records(f)] == [{"text": "A line; with a semicolon | and a bar"}, {"text": "Another"}]


# -- doctor: can the window start? ----------------------------------------------------------
def test_window_check_passes_on_a_platform_that_loads():
    check = window_check({**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert (check.status, check.detail) == ("ok", "Qt starts on the offscreen platform")


def test_window_check_names_a_platform_plugin_that_cannot_load():
    check = window_check({**os.environ, "QT_QPA_PLATFORM": "nonexistent"})
    assert check.status == "problem" and 'no platform plugin "nonexistent"' in check.detail
    assert check.fix.startswith("unset QT_QPA_PLATFORM (or set it to one of:") and "offscreen" in check.fix
    text = format_checks([check])
    assert "PROBLEM  Window" in text and "Ready to train." not in text
    assert text.endswith("The command line is ready to train meanwhile (tunedesk train FILE).")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"), reason="ldd: Linux only")
def test_window_check_names_the_missing_xcb_libraries():
    """Qt's default platform on Linux, as a user would start it: on a machine without the xcb
    libraries (this project's machines lack libxcb-icccm4 and libxcb-keysyms1) doctor names them
    by package; with them but no display it says the window needs a desktop session."""
    from PySide6.QtCore import QLibraryInfo  # the test may import Qt; the engine may not

    plugin = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath) + "/platforms/libqxcb.so"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    check = window_check(env)
    missing = missing_libraries(Path(plugin))
    if missing:
        assert check.status == "problem" and all(lib in check.detail for lib in missing)
        assert check.fix.startswith("sudo apt install ")
        if "libxcb-icccm.so.4" in missing:
            assert "libxcb-icccm4" in check.fix
        assert "Ready to train." not in format_checks([check])
    else:
        assert check.status == "note" and "no display here" in check.detail
        assert format_checks([check]).endswith("the window cannot open here (see the note above).")


def test_doctor_cli_does_not_call_a_broken_window_ready():
    env = {**os.environ, "QT_QPA_PLATFORM": "nonexistent"}
    r = subprocess.run([sys.executable, "-m", "engine.cli", "doctor"], capture_output=True, text=True, timeout=300,
                       env=env, cwd=REPO)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r'^PROBLEM  Window +Qt has no platform plugin "nonexistent"', r.stdout, flags=re.M)
    assert "Ready to train." not in r.stdout and "The window cannot start" in r.stdout
