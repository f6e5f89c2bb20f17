"""Model sources and the CLI's error contract: one clear line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import models
from engine.errors import ModelError

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=os.environ.copy())


def test_demo_is_converted_once_to_safetensors(demo_folder):
    assert (demo_folder / "model.safetensors").is_file() and (demo_folder / "config.json").is_file()
    assert (demo_folder / "tokenizer.json").is_file()
    assert models.resolve("demo") == demo_folder  # second time: the cached folder
    assert not list(demo_folder.glob("*.bin"))


def test_pickle_weights_need_consent(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelError, match="pickle"):
        models.resolve(str(tmp_path))
    assert models.resolve(str(tmp_path), allow_pickle=True) == tmp_path.resolve()


@pytest.mark.parametrize(
    "source, words",
    [
        ("./nowhere/model", "no such file or folder"),
        ("missing.gguf", "no such file or folder"),
        ("not a model id!", "not a model folder"),
    ],
)
def test_bad_sources_say_what_is_wrong(source, words):
    with pytest.raises(ModelError, match=words):
        models.resolve(source)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        models.resolve(str(tmp_path))


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "q", "answer": "a"}\n' * 3)
    cases = [
        (("train", str(tmp_path / "missing.jsonl")), "no such file"),
        (("train", str(data), "--model", "nobody/no-such-model-xyz"), "Hugging Face Hub"),
        (("train", str(data), "--lr", "7"), "learning rate"),
        (("chat", str(tmp_path), "--prompt", "hi"), "not a TuneDesk run folder"),
    ]
    for args, words in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert words in lines[-1] and lines[-1].startswith(f"tunedesk {args[0]}: error:"), r.stderr


def test_console_script_help_lists_subcommands():
    r = run_cli("--help")
    assert r.returncode == 0 and "train" in r.stdout and "chat" in r.stdout
