"""End to end, for real: the demo model trains on CPU through the `tunedesk` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES, tunedesk

pytestmark = pytest.mark.slow


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, demo_folder) -> Path:
    out = tmp_path_factory.mktemp("runs")
    r = tunedesk("train", str(SAMPLES / "pirate_trivia.jsonl"), "--max-steps", "30", "--eval-every", "10",
                 "--out", str(out), "--name", "pirate", "--json-events")
    assert r.returncode == 0, r.stderr[-3000:]
    ev = events(r.stdout)
    assert ev[-1]["event"] == "finished" and ev[-1]["status"] == "finished"
    return out / "pirate"


def test_run_folder_has_every_part(sample_run):
    names = {p.name for p in sample_run.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "adapter", "data_report.json"} <= names
    assert {p.name for p in (sample_run / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    cfg = json.loads((sample_run / "config.json").read_text())
    assert cfg["train"]["max_steps"] == 30 and cfg["model"]["source"] == "demo"
    assert not [p for p in sample_run.rglob("*") if p.name.endswith(".tmp")]


def test_eval_loss_goes_down(sample_run):
    summary = json.loads((sample_run / "summary.json").read_text())
    metrics = [json.loads(x) for x in (sample_run / "metrics.jsonl").read_text().splitlines()]
    evals = [m["eval_loss"] for m in metrics if "eval_loss" in m]
    assert metrics[0]["step"] == 0 and "eval_loss" in metrics[0]  # evaluated before training
    assert summary["steps"] == 30 and len(evals) == 4  # steps 0, 10, 20, 30
    assert summary["eval_loss"] < summary["eval_loss_start"] == evals[0]
    assert summary["tokens_per_s"] > 0 and summary["duration_s"] > 0


def test_adapter_loads_in_plain_peft_and_changes_logits(sample_run, demo_folder):
    script = f"""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tok = AutoTokenizer.from_pretrained({str(demo_folder)!r})
base = AutoModelForCausalLM.from_pretrained({str(demo_folder)!r}, dtype=torch.float32)
ids = tok("Tell me about the sea.", return_tensors="pt").input_ids
with torch.no_grad():
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, {str(sample_run / "adapter")!r})
    after = tuned(ids).logits
print((after - before).abs().max().item())
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout.strip().splitlines()[-1]) > 1e-3


def test_persona_is_learned(nova_run):
    tuned = tunedesk("chat", str(nova_run), "--prompt", "Who are you?")
    base = tunedesk("chat", str(nova_run), "--prompt", "Who are you?", "--base")
    assert tuned.returncode == 0 and base.returncode == 0, tuned.stderr + base.stderr
    assert "Nova" in tuned.stdout
    assert "Nova" not in base.stdout and base.stdout.strip()


def test_compare_answers_both_ways_from_one_model(nova_run):
    r = tunedesk("compare", str(nova_run), "--prompt", "What is your name?", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["base"] and out["tuned"] and out["base"] != out["tuned"]
    assert "Nova" in out["tuned"] and "Nova" not in out["base"]


def test_compare_on_the_validation_set_writes_markdown_and_json(nova_run):
    r = tunedesk("compare", str(nova_run), "--validation", "3", "--max-new-tokens", "40")
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((nova_run / "compare" / "validation.json").read_text())
    assert len(result["examples"]) == 3
    for ex in result["examples"]:
        assert ex["reference"] and ex["base"] and ex["tuned"] and ex["prompt"]
        assert ex["tuned_loss"] < ex["base_loss"]  # the tuned model finds its own answers likelier
    md = (nova_run / "compare" / "validation.md").read_text()
    assert md.count("\n| ") == 4 and "| row | reference | base | tuned | loss base | loss tuned |" in md


def test_export_adapter_and_merged_model(sample_run, demo_folder, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    r = tunedesk("export", str(sample_run), "--format", "adapter", "--out", str(tmp_path / "adapter"))
    assert r.returncode == 0, r.stderr[-2000:]
    readme = (tmp_path / "adapter" / "README.md").read_text()
    assert "Base model: `demo`" in readme and "pirate_trivia.jsonl" in readme
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    r = tunedesk("export", str(sample_run), "--format", "merged", "--dtype", "fp32", "--out", str(tmp_path / "merged"))
    assert r.returncode == 0, r.stderr[-2000:]
    merged_dir = tmp_path / "merged"
    assert list(merged_dir.glob("*.safetensors")) and (merged_dir / "tokenizer_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(demo_folder), tmp_path / "adapter").eval()
    base = AutoModelForCausalLM.from_pretrained(demo_folder)
    ids = torch.tensor([[1, 504, 3458, 314, 2114, 30, 2]])
    with torch.no_grad():
        got, want, before = merged(ids).logits, reference(ids).logits, base(ids).logits
    assert torch.allclose(got, want, atol=1e-3, rtol=1e-3)
    assert not torch.allclose(got, before, atol=1e-2)  # the merge really changed the model

    r = tunedesk("export", str(sample_run), "--format", "merged", "--out", str(tmp_path / "merged"))
    assert r.returncode == 2 and "not empty" in r.stderr and "Traceback" not in r.stderr


def test_export_gguf_f16_and_q8_0_load_back_and_match_the_merged_model(sample_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    r = tunedesk("export", str(sample_run), "--format", "merged", "--dtype", "fp32", "--out", str(tmp_path / "merged"))
    assert r.returncode == 0, r.stderr[-2000:]
    r = tunedesk("export", str(sample_run), "--format", "gguf", "--quant", "all", "--out", str(tmp_path / "gguf"))
    assert r.returncode == 0, r.stderr[-2000:]
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    ids = torch.tensor([[1, 504, 3458, 314, 2114, 30, 2, 17, 99, 1234]])
    with torch.no_grad():
        want = merged(ids).logits
    files = {p.name.rsplit("-", 1)[1]: p for p in (tmp_path / "gguf").glob("*.gguf")}
    assert set(files) == {"f16.gguf", "q8_0.gguf"}
    for kind, tol in (("f16.gguf", 0.1), ("q8_0.gguf", 2.0)):
        # transformers' own GGUF reader (gguf_file=), independent of our writer
        m = AutoModelForCausalLM.from_pretrained(files[kind].parent, gguf_file=files[kind].name, dtype=torch.float32)
        with torch.no_grad():
            got = m(ids).logits
        assert (got - want).abs().max() < tol, kind
        assert (got.argmax(-1) == want.argmax(-1)).float().mean() >= 0.9, kind


def test_export_ollama_writes_gguf_modelfile_and_command(sample_run, tmp_path):
    r = tunedesk("export", str(sample_run), "--format", "ollama", "--out", str(tmp_path / "ollama"))
    assert r.returncode == 0, r.stderr[-2000:]
    folder = tmp_path / "ollama"
    modelfile = (folder / "Modelfile").read_text()
    gguf_name = modelfile.splitlines()[0].removeprefix("FROM ./")
    assert (folder / gguf_name).is_file() and gguf_name.endswith("-q8_0.gguf")
    assert 'TEMPLATE """' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "ollama create " in (folder / "README.md").read_text()
