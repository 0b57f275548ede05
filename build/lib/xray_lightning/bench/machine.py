"""What a benchmark needs to know about the machine: CPU/GPU names, load, peak memory, timers."""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info(device: torch.device) -> dict[str, Any]:
    from xray_lightning.hardware import cpu_info

    cpu = cpu_info()
    info: dict[str, Any] = {
        "cpu": cpu.model,
        "isa": cpu.isa,  # AVX2 / AVX512 / AVX512_BF16 / AMX: what decides the fast precision
        "native_bf16": cpu.native_bf16,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": load_average(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu_mhz": cpu_mhz(),
        "peak_fp32": peak_fp32_gflops(torch.get_num_threads(), cpu.flags),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wait_for_load(max_load: float | None, max_wait_s: float, poll_s: float = 5.0) -> float:
    """Sleep until the 1-minute load average is <= ``max_load`` (or ``max_wait_s`` passed);
    return the load average when measurement starts."""
    deadline = time.monotonic() + max_wait_s
    while True:
        load = load_average()
        now = load[0] if load else 0.0
        if max_load is None or now <= max_load or time.monotonic() >= deadline:
            return now
        time.sleep(poll_s)


def _status_kib(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


@dataclass
class PeakMemory:
    """Peak resident memory (and CUDA memory) of this process during a ``with`` block.

    On Linux the high-water mark is reset on entry (``/proc/self/clear_refs`` = 5) and, since
    the kernel updates it lazily, VmRSS is also sampled every ``interval_s`` by a thread; the
    peak is the larger of the two. Elsewhere the process-lifetime peak (ru_maxrss) is reported.
    """

    device: torch.device
    interval_s: float = 0.01
    start_mib: float | None = None
    peak_mib: float | None = None
    gpu_peak_mib: float | None = None
    per_phase: bool = False
    _sampled_kib: int = 0
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        try:
            CLEAR_REFS.write_text("5")
            self.per_phase = _status_kib("VmRSS") is not None
        except OSError:
            self.per_phase = False
        rss = _status_kib("VmRSS")
        self.start_mib = rss / 1024 if rss is not None else None
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if self.per_phase:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        assert self._stop is not None
        while True:
            self._sampled_kib = max(self._sampled_kib, _status_kib("VmRSS") or 0)
            if self._stop.wait(self.interval_s):
                return

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join()
        hwm = _status_kib("VmHWM") if self.per_phase else None
        if hwm is None:  # ru_maxrss is in KiB on Linux
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_mib = max(hwm, self._sampled_kib) / 1024
        if self.device.type == "cuda":
            self.gpu_peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"peak_rss_mib": _round(self.peak_mib)}
        if self.per_phase and self.start_mib is not None and self.peak_mib is not None:
            out["peak_rss_added_mib"] = _round(self.peak_mib - self.start_mib)
        if self.gpu_peak_mib is not None:
            out["peak_gpu_mib"] = _round(self.gpu_peak_mib)
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def fp32_flops_per_cycle(flags: frozenset[str]) -> int:
    """Peak fp32 FLOPs per cycle and core: 2 FMA pipes x vector lanes x 2 (multiply + add).

    AVX-512: 16 lanes, AVX2 + FMA: 8 lanes (Haswell and later, AMD Zen 2-4), AVX: 8 lanes
    without FMA, SSE: 4 lanes. Some CPUs have one AVX-512 FMA pipe: then the peak is half.
    """
    if "avx512f" in flags:
        return 2 * 16 * 2
    if "avx2" in flags and "fma" in flags:
        return 2 * 8 * 2
    if "avx" in flags:
        return 2 * 8
    return 2 * 4


def cpu_mhz() -> float | None:
    """The clock /proc/cpuinfo reports (the base clock on most VMs; turbo may run higher)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def peak_fp32_gflops(threads: int, flags: frozenset[str]) -> dict[str, Any] | None:
    """threads x clock x fp32 FLOPs per cycle, with the inputs it was computed from."""
    mhz = cpu_mhz()
    if mhz is None:
        return None
    per_cycle = fp32_flops_per_cycle(flags)
    return {
        "gflops": round(threads * mhz / 1000 * per_cycle, 1),
        "formula": f"{threads} cores x {mhz / 1000:.2f} GHz x {per_cycle} fp32 FLOP/cycle",
    }


def train_flops_per_image(net: torch.nn.Module, image_size: int, in_channels: int = 1) -> float:
    """FLOPs of one training step (forward + backward) per image, counted by PyTorch's
    ``FlopCounterMode`` (a multiply-add is 2 FLOPs); the optimizer step is not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    images = torch.randn(2, in_channels, image_size, image_size)
    net = net.train()
    with FlopCounterMode(display=False) as counter:
        net(images).float().sum().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2
