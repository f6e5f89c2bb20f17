"""What machine are we on: GPUs through NVML (pynvml), RAM and CPU through psutil, disk.

No torch import here: the probe must be fast enough for the window's first paint. A
missing driver or library is not an error, it is a CPU plan and a plain warning.
`TUNEDESK_SIMULATE_VRAM_GB` caps the CUDA allocator so a big card behaves like a small
one (benchmarks; see ../shared/GPU.md) and makes the probe report that card.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GiB = 1024**3
SIMULATE_ENV = "TUNEDESK_SIMULATE_VRAM_GB"
SIMULATE_RAM_ENV = "TUNEDESK_SIMULATE_RAM_GB"  # plan for a PC with this much RAM (benchmarks)
DESKTOP_IN_USE = 3 * GiB  # what the OS and a desktop session already hold on a simulated PC


@dataclass
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    used_bytes: int
    driver: str
    capability: tuple[int, int]
    utilization_pct: int | None = None

    @property
    def bf16(self) -> bool:
        return self.capability >= (8, 0)  # Ampere (RTX 30xx) and newer


@dataclass
class HardwareInfo:
    gpus: list[GpuInfo] = field(default_factory=list)
    chosen: int | None = None
    """Index into `gpus` of the card TuneDesk trains on (most free memory)."""
    ram_total_bytes: int = 0
    ram_available_bytes: int = 0
    cpu_cores: int = 0
    cpu_name: str = ""
    disk_free_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)
    simulated_vram_bytes: int | None = None

    @property
    def gpu(self) -> GpuInfo | None:
        return self.gpus[self.chosen] if self.chosen is not None else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for g, info in zip(d["gpus"], self.gpus):
            g["bf16"] = info.bf16
        return d


def _nvml_gpus(nvml) -> tuple[list[GpuInfo], str | None]:
    """GPUs from an NVML module (pynvml, or a fake in tests); (gpus, problem)."""
    try:
        nvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, …
        return [], f"no NVIDIA driver found ({type(e).__name__})"
    try:
        driver = nvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else str(driver)
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            name = nvml.nvmlDeviceGetName(h)
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            try:
                util = int(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:
                util = None
            gpus.append(
                GpuInfo(
                    index=i,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    total_bytes=int(mem.total),
                    free_bytes=int(mem.free),
                    used_bytes=int(mem.used),
                    driver=driver,
                    capability=tuple(nvml.nvmlDeviceGetCudaComputeCapability(h)),
                    utilization_pct=util,
                )
            )
        return gpus, None
    except Exception as e:
        return [], f"the NVIDIA driver did not answer ({type(e).__name__}: {e})"
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def probe(out_dir: str | Path | None = None, *, nvml=None) -> HardwareInfo:
    import psutil

    info = HardwareInfo()
    vm = psutil.virtual_memory()
    info.ram_total_bytes, info.ram_available_bytes = int(vm.total), int(vm.available)
    sim_ram = os.environ.get(SIMULATE_RAM_ENV)
    if sim_ram:
        info.ram_total_bytes = int(float(sim_ram) * GiB)
        info.ram_available_bytes = min(info.ram_available_bytes, info.ram_total_bytes - DESKTOP_IN_USE)
        info.warnings.append(f"Simulating a PC with {float(sim_ram):g} GiB of RAM ({SIMULATE_RAM_ENV}).")
    info.cpu_cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    info.cpu_name = platform.processor() or platform.machine()
    if out_dir is not None:
        target = Path(out_dir)
        while not target.exists() and target != target.parent:
            target = target.parent
        info.disk_free_bytes = int(shutil.disk_usage(target).free)

    if nvml is None:
        try:
            import pynvml as nvml  # from nvidia-ml-py
        except ImportError:
            nvml = None
    gpus, problem = _nvml_gpus(nvml) if nvml is not None else ([], "nvidia-ml-py is not installed")
    info.gpus = gpus
    if not gpus:
        info.warnings.append(
            f"No NVIDIA GPU available: {problem or 'none found'}. Training runs on the CPU, "
            "which suits the built-in demo model but is very slow for real models."
        )
        return info
    info.chosen = max(range(len(gpus)), key=lambda i: gpus[i].free_bytes)
    if len(gpus) > 1:
        g = gpus[info.chosen]
        info.warnings.append(f"{len(gpus)} GPUs found; training on GPU {g.index} ({g.name}), the one with the most free memory.")
    sim = os.environ.get(SIMULATE_ENV)
    if sim:
        cap = int(float(sim) * GiB)
        g = gpus[info.chosen]
        info.simulated_vram_bytes = cap
        g.total_bytes, g.free_bytes, g.used_bytes = cap, cap, 0
        info.warnings.append(f"Simulating a GPU with {float(sim):g} GiB usable ({SIMULATE_ENV}).")
    elif not gpus[info.chosen].bf16:
        info.warnings.append(f"{gpus[info.chosen].name} has no bf16: training uses fp16 with loss scaling.")
    return info


def keep_allocations_compact() -> None:
    """Expandable segments let the CUDA cache grow and shrink in place: steps of changing
    lengths then reuse memory instead of splitting blocks, so the reserved memory stays
    near what is allocated, and near what calibration measured. Read when CUDA first
    allocates, so set before that; a user's own setting wins. (Linux only: elsewhere
    PyTorch ignores it with a warning, and calibration's allowance still holds.)"""
    if os.name == "posix":
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")


def _glibc():
    import ctypes
    import ctypes.util

    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl): its allocator hands big blocks back already
        return None


def keep_ram_compact() -> None:
    """CPU training: large tensors in their own memory maps, handed back to the OS when
    freed. glibc otherwise raises its mmap threshold as big blocks are freed and keeps
    them in the heap, where steps of changing lengths fragment it: the demo model's
    calibration step peaked at 18.5 GiB and the first real step grew the process to 22.9
    (bench/cpu_ram.py). A fixed threshold (mallopt M_MMAP_THRESHOLD) stops that."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: blocks of 1 MiB and more are memory maps


def reset_peak_rss() -> bool:
    """Start measuring this process's peak resident memory afresh: freed heap handed back
    first (malloc_trim), else it would count as held; then VmHWM reset (clear_refs 5).
    False where the OS offers no way (not Linux)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """This process's peak resident memory since the last reset_peak_rss() (Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def apply_simulated_cap() -> None:
    """Cap torch's CUDA allocator at TUNEDESK_SIMULATE_VRAM_GB (no-op when unset)."""
    sim = os.environ.get(SIMULATE_ENV)
    if not sim:
        return
    import torch

    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, float(sim) * GiB / total))


def describe(info: HardwareInfo) -> str:
    lines = []
    for g in info.gpus:
        mark = "*" if g.index == (info.gpu.index if info.gpu else None) else " "
        lines.append(
            f"{mark} GPU {g.index}: {g.name}, {g.total_bytes / GiB:.1f} GiB ({g.free_bytes / GiB:.1f} free), "
            f"driver {g.driver}, compute {g.capability[0]}.{g.capability[1]}, bf16 {'yes' if g.bf16 else 'no'}"
            + (f", {g.utilization_pct}% busy" if g.utilization_pct is not None else "")
        )
    lines.append(f"  RAM: {info.ram_total_bytes / GiB:.1f} GiB ({info.ram_available_bytes / GiB:.1f} available); CPU: {info.cpu_cores} cores {info.cpu_name}")
    if info.disk_free_bytes is not None:
        lines.append(f"  Disk free for runs: {info.disk_free_bytes / GiB:.1f} GiB")
    lines += [f"warning: {w}" for w in info.warnings]
    return "\n".join(lines)
