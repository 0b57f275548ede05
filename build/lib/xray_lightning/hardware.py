"""``auto`` precision and memory format: the fastest safe choice for the machine at hand.

bf16 autocast is ~2x faster than fp32 on a CPU with native bf16 (AMX, AVX-512-BF16) or a CUDA GPU
with bf16, and 5-14x *slower* on a CPU without it (AVX2-only laptops, AMD EPYC before Zen 4):
there PyTorch emulates bf16 with conversions. So ``trainer.precision: auto`` is bf16-mixed only
where bf16 is native, else 32-true. ``channels_last: auto`` is measured: a few training steps of
the configured network in each memory format (a few seconds at most), cached per machine +
network + precision in the cache dir, so a sweep probes once. Contiguous wins only when it trains
more than 10% faster (NHWC also speeds up inference).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xray_lightning.durable import write_text_atomic
from xray_lightning.errors import XrayLightningError

log = logging.getLogger(__name__)

AUTO = "auto"
BF16_PRECISIONS = ("bf16-mixed", "bf16", "bf16-true")
# /proc/cpuinfo flags of CPUs that compute bf16 natively (oneDNN uses them under autocast)
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
PROBE_BATCH = 16
PROBE_STEPS = 3
PROBE_BUDGET_S = 3.0
# channels_last is kept unless contiguous trains clearly faster: it also speeds up inference
# 1.4-2.3x for every network here (fp32 on AVX2; bf16 on AMX and CUDA use NHWC kernels anyway)
CONTIGUOUS_MARGIN = 0.9
PROBE_FILE = "hardware_probe.json"
PROBE_VERSION = 2


class HardwareConfigError(XrayLightningError, ValueError):
    """A precision or channels_last value that is neither ``auto`` nor an explicit choice."""


@dataclass(frozen=True)
class CpuInfo:
    """What decides the CPU's fast path: its model name, PyTorch's ISA level and the flags."""

    model: str
    capability: str
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    @property
    def isa(self) -> str:
        """AMX, AVX-512-BF16, AVX-512, AVX2 ...: the best vector unit, for logs and benchmarks."""
        if "amx_bf16" in self.flags:
            return "AMX"
        if "avx512_bf16" in self.flags:
            return "AVX512_BF16"
        return self.capability


def cpu_info() -> CpuInfo:
    """This machine's CPU, from /proc/cpuinfo and ``torch.backends.cpu.get_cpu_capability()``."""
    model, flags = platform.processor() or platform.machine(), frozenset()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = frozenset(value.split())
    except OSError:
        pass
    return CpuInfo(model=model, capability=torch.backends.cpu.get_cpu_capability(), flags=flags)


def cuda_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(
    requested: Any, accelerator: str, cpu: CpuInfo | None = None, cuda_has_bf16: bool | None = None
) -> tuple[str, str]:
    """(precision, why): explicit values are kept; ``auto`` is bf16-mixed only where native."""
    if requested is None:
        return "32-true", "precision not set: 32-true"
    if str(requested) != AUTO:
        return str(requested), "set explicitly"
    if accelerator in ("gpu", "cuda"):
        native = cuda_bf16() if cuda_has_bf16 is None else cuda_has_bf16
        if native:
            return "bf16-mixed", "CUDA GPU with native bf16"
        return "32-true", "CUDA GPU without bf16"
    cpu = cpu or cpu_info()
    if cpu.native_bf16:
        return "bf16-mixed", f"CPU with native bf16 ({cpu.isa})"
    return "32-true", f"CPU without native bf16 ({cpu.isa}: bf16 autocast is emulated, slower)"


def _autocast(device: torch.device, precision: str):
    enabled = precision in BF16_PRECISIONS
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step_seconds(
    nets: dict[bool, nn.Module],
    image_size: int,
    in_channels: int,
    precision: str,
    device: torch.device,
    steps: int = PROBE_STEPS,
) -> dict[bool, float]:
    """{channels_last: fastest seconds of one forward + backward + SGD step} on a small random
    batch. The formats take turns (after one warm-up step each), so a load that comes and goes
    on a shared machine slows both alike."""
    runs = {}
    for channels_last, net in nets.items():
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(device=device, memory_format=fmt).train()
        images = torch.randn(PROBE_BATCH, in_channels, image_size, image_size, device=device)
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-4)
        runs[channels_last] = (net, images.contiguous(memory_format=fmt), optimizer)
    best = {channels_last: float("inf") for channels_last in nets}
    deadline = time.perf_counter() + PROBE_BUDGET_S
    for step in range(steps + 1):  # step 0 warms up the kernels and is not counted
        if step > 1 and time.perf_counter() > deadline:  # a slow network: fewer steps
            break
        for channels_last, (net, images, optimizer) in runs.items():
            _sync(device)
            started = time.perf_counter()
            with _autocast(device, precision):
                loss = net(images).float().square().mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            _sync(device)
            if step:
                best[channels_last] = min(best[channels_last], time.perf_counter() - started)
    return best


def probe_key(net_config: dict[str, Any], precision: str, device: torch.device) -> str:
    """Cache key: the machine (CPU or GPU, threads, torch) + the network + the precision."""
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        cpu = cpu_info()
        machine = f"{cpu.model}|{cpu.isa}|{torch.get_num_threads()} threads"
    probe = [PROBE_VERSION, PROBE_BATCH, CONTIGUOUS_MARGIN]  # a changed probe measures again
    payload = json.dumps(
        [machine, torch.__version__, precision, net_config, probe], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def probe_channels_last(
    build_net: Callable[[], nn.Module],
    net_config: dict[str, Any],
    precision: str,
    device: torch.device,
    cache_dir: str | Path | None,
) -> tuple[bool, str]:
    """(channels_last, why): the faster memory format for this net, measured once per machine."""
    key = probe_key(net_config, precision, device)
    cache = Path(cache_dir) / PROBE_FILE if cache_dir else None
    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
    if key in known and isinstance(known[key], dict) and "channels_last" in known[key]:
        entry = known[key]
        return bool(entry["channels_last"]), f"probe cached: {entry['why']}"
    image_size = int(net_config.get("image_size", 150))
    in_channels = int(net_config.get("in_channels", 1))
    nets = {False: build_net(), True: build_net()}
    seconds = train_step_seconds(nets, image_size, in_channels, precision, device)
    faster = seconds[False] >= CONTIGUOUS_MARGIN * seconds[True]
    why = (
        f"measured {PROBE_BATCH}-image train step: channels_last {seconds[True] * 1e3:.0f} ms, "
        f"contiguous {seconds[False] * 1e3:.0f} ms"
    )
    if cache is not None:
        known[key] = {"channels_last": faster, "why": why, "net": net_config.get("_target_")}
        try:
            write_text_atomic(cache, json.dumps(known, indent=1, sort_keys=True))
        except OSError as error:  # a read-only cache dir costs a probe next time, nothing more
            log.debug("hardware probe cache not written: %s", error)
    return faster, why


def check_channels_last(value: Any) -> bool | str:
    """``channels_last`` is true, false or ``auto``."""
    if isinstance(value, bool) or value == AUTO:
        return value
    raise HardwareConfigError(f"channels_last must be true, false or auto; got {value!r}")
