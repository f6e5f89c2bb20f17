"""The hardware probe: no GPU (this machine) and simulated NVML GPUs."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from conftest import REPO

from engine.hardware import GiB, probe


class FakeNvml:
    """Answers like pynvml for the given cards: (name, total GiB, free GiB, capability)."""

    def __init__(self, cards, *, fail_init=False):
        self.cards, self.fail_init = cards, fail_init

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVMLError_LibraryNotFound")

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return b"560.94"

    def nvmlDeviceGetCount(self):
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return self.cards[h][0]

    def nvmlDeviceGetMemoryInfo(self, h):
        _, total, free, _ = self.cards[h]
        return SimpleNamespace(total=int(total * GiB), free=int(free * GiB), used=int((total - free) * GiB))

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return self.cards[h][3]

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=7)


def test_no_driver_means_a_cpu_plan_and_a_plain_warning(tmp_path):
    info = probe(tmp_path, nvml=FakeNvml([], fail_init=True))
    assert info.gpus == [] and info.gpu is None
    assert "Training runs on the CPU" in info.warnings[0] and "Traceback" not in info.warnings[0]
    assert info.ram_total_bytes > 0 and info.cpu_cores >= 1 and info.disk_free_bytes > 0


def test_single_rtx_3060(tmp_path):
    info = probe(tmp_path, nvml=FakeNvml([("NVIDIA GeForce RTX 3060", 12, 11.2, (8, 6))]))
    g = info.gpu
    assert (g.name, g.bf16, g.driver, g.utilization_pct) == ("NVIDIA GeForce RTX 3060", True, "560.94", 7)
    assert round(g.free_bytes / GiB, 1) == 11.2 and info.warnings == []


def test_several_gpus_pick_the_most_free_and_say_so(tmp_path):
    cards = [("NVIDIA GeForce RTX 2060", 6, 5.5, (7, 5)), ("NVIDIA GeForce RTX 4060", 8, 7.1, (8, 9))]
    info = probe(tmp_path, nvml=FakeNvml(cards))
    assert info.gpu.name == "NVIDIA GeForce RTX 4060" and info.chosen == 1
    assert "2 GPUs found; training on GPU 1" in info.warnings[0]
    assert info.to_dict()["gpus"][0]["bf16"] is False


def test_probe_cli_json_on_this_machine():
    r = subprocess.run([sys.executable, "-m", "engine.cli", "probe", "--json"], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["gpus"] == [] and d["chosen"] is None and d["ram_total_bytes"] > 0
