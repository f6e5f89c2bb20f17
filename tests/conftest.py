"""Shared fixtures. The demo model is converted once per machine into a test cache;
run folders go to each test's tmp_path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Before anything imports engine.paths: keep test caches apart from the user's own.
os.environ.setdefault("TUNEDESK_HOME", str(Path.home() / ".cache" / "tunedesk-tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "resources" / "samples"


def trained_pieces(tok, rendered) -> list[str]:
    """The decoded runs of consecutive trained tokens of a rendered example."""
    from engine.data.render import IGNORE

    pieces, cur = [], []
    for t, lab in zip(rendered.input_ids, rendered.labels):
        if lab != IGNORE:
            cur.append(t)
        elif cur:
            pieces.append(tok.decode(cur))
            cur = []
    if cur:
        pieces.append(tok.decode(cur))
    return pieces


@pytest.fixture(scope="session")
def demo_folder() -> Path:
    from engine import models

    return models.resolve("demo")


@pytest.fixture(scope="session")
def demo_tokenizer(demo_folder):
    from engine.config import ModelConfig
    from engine.models.loading import load_tokenizer

    return load_tokenizer(demo_folder, ModelConfig())


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory, demo_folder) -> Path:
    """A 2-layer random Llama with the demo tokenizer: trains in a fraction of a second."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    cfg = LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(demo_folder).save_pretrained(out)
    return out


def tunedesk(*args: str, timeout: int = 900):
    """Run the `tunedesk` CLI in a subprocess (as a user would), from the repo root."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=os.environ.copy(), cwd=REPO)


@pytest.fixture(scope="session")
def nova_run(tmp_path_factory, demo_folder) -> Path:
    """The demo model trained on the Nova persona (tests/persona.py): 30 CPU steps, once."""
    from persona import write_persona

    out = tmp_path_factory.mktemp("nova")
    data = write_persona(out / "nova.jsonl")
    r = tunedesk("train", str(data), "--max-steps", "30", "--lr", "1e-3", "--out", str(out), "--name", "nova",
                 "--eval-every", "30", "--json-events")
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "nova"


@pytest.fixture(scope="session")
def tiny_tool_run(tiny_model_folder, tmp_path_factory) -> Path:
    """The tiny random model, 2 steps on the tool set (tests/tool_set.py): a run whose dataset offers tools."""
    from tool_set import write_tool_set

    out = tmp_path_factory.mktemp("tool-run")
    data = write_tool_set(out / "tools.jsonl", n=24)
    r = tunedesk("train", str(data), "--model", str(tiny_model_folder), "--max-steps", "2", "--out", str(out), "--name", "t",
                 "--eval-every", "2", "--json-events")
    assert r.returncode == 0, r.stderr[-2000:]
    return out / "t"


from engine.reporting import RecordingReporter  # noqa: E402 - after TUNEDESK_HOME is set; no torch


class StopAfter(RecordingReporter):
    """A recording reporter that asks the run to stop once step `step` is done."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.after = step

    def event(self, kind, **data):
        super().event(kind, **data)
        if kind == "progress" and data["step"] >= self.after:
            self.request_stop()


pytest_plugins = ["gui_helpers"]  # window / settings fixtures of the GUI tests


def tiny_run_config(tiny_model_folder, tmp_path, **train):
    """A request for the tiny model on the support-desk sample, micro-batch 2; `train` sets
    more of cfg.train (the trainer's and the guards' tests)."""
    from engine.config import RunConfig

    cfg = RunConfig()
    cfg.model.source = str(tiny_model_folder)
    cfg.data.path = str(SAMPLES / "support_desk.json")
    cfg.out_dir, cfg.name = str(tmp_path), "tiny"
    cfg.train.micro_batch = 2
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg
