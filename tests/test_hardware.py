"""``auto`` precision and memory format: resolved per machine, explicit values win, resume keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra_utils import compose_train

from xray_lightning import builders, hardware
from xray_lightning.hardware import CpuInfo, HardwareConfigError, resolve_precision
from xray_lightning.modules.checkpoints import read_checkpoint
from xray_lightning.train import run

AVX2 = CpuInfo("AMD EPYC", "AVX2", frozenset({"avx2", "fma"}))
AVX512 = CpuInfo("Intel Xeon Skylake", "AVX512", frozenset({"avx2", "avx512f", "avx512bw"}))
AMX = CpuInfo("Intel Xeon Sapphire Rapids", "AVX512", frozenset({"avx512f", "amx_bf16"}))
AVX512_BF16 = CpuInfo("AMD EPYC Zen 4", "AVX512", frozenset({"avx512f", "avx512_bf16"}))


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [(AVX2, "32-true"), (AVX512, "32-true"), (AMX, "bf16-mixed"), (AVX512_BF16, "bf16-mixed")],
)
def test_auto_precision_on_cpu_is_bf16_only_where_native(cpu: CpuInfo, expected: str) -> None:
    precision, why = resolve_precision("auto", "cpu", cpu=cpu)
    assert precision == expected
    assert cpu.isa in why


@pytest.mark.parametrize(("has_bf16", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_precision_on_gpu_follows_cuda_bf16(has_bf16: bool, expected: str) -> None:
    assert resolve_precision("auto", "gpu", cuda_has_bf16=has_bf16)[0] == expected


@pytest.mark.parametrize("explicit", ["bf16-mixed", "32-true", "16-mixed"])
def test_explicit_precision_is_honoured_on_any_cpu(explicit: str) -> None:
    for cpu in (AVX2, AMX):
        assert resolve_precision(explicit, "cpu", cpu=cpu) == (explicit, "set explicitly")


def use_cpu(monkeypatch: pytest.MonkeyPatch, cpu: CpuInfo) -> None:
    monkeypatch.setattr(hardware, "cpu_info", lambda: cpu)


def test_resolve_hardware_on_an_avx2_cpu(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cpu(monkeypatch, AVX2)
    cfg = compose_train(synthetic_root, tmp_path, [f"paths.cache_dir={tmp_path / 'cache'}"])
    assert cfg.trainer.precision == "auto" and cfg.channels_last == "auto"  # the shipped defaults
    info = builders.resolve_hardware(cfg)
    assert cfg.trainer.precision == info["precision"] == "32-true"
    assert isinstance(cfg.channels_last, bool) and cfg.channels_last == info["channels_last"]
    assert info["isa"] == "AVX2" and "measured" in info["channels_last_reason"]
    # the probe is cached per machine + network: a second run does not measure again
    monkeypatch.setattr(hardware, "train_step_seconds", pytest.fail)
    again = compose_train(synthetic_root, tmp_path, [f"paths.cache_dir={tmp_path / 'cache'}"])
    assert builders.resolve_hardware(again)["channels_last_reason"].startswith("probe cached")


def test_resolve_hardware_on_an_amx_cpu(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cpu(monkeypatch, AMX)
    cfg = compose_train(synthetic_root, tmp_path, ["channels_last=false"])
    monkeypatch.setattr(hardware, "probe_channels_last", pytest.fail)  # explicit: no probe
    info = builders.resolve_hardware(cfg)
    assert cfg.trainer.precision == "bf16-mixed" and cfg.channels_last is False
    assert info["channels_last_reason"] == "set explicitly"


def test_bad_channels_last_value_names_the_key(synthetic_root: Path, tmp_path: Path) -> None:
    cfg = compose_train(synthetic_root, tmp_path, ["channels_last=fast"])
    with pytest.raises(HardwareConfigError, match="channels_last must be true, false or auto"):
        builders.resolve_hardware(cfg)


def test_choice_is_stored_in_metrics_and_checkpoint_and_kept_on_resume(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cpu(monkeypatch, AMX)  # auto -> bf16-mixed
    common = ["trainer.max_epochs=1", "channels_last=auto"]
    first = run(compose_train(synthetic_root, tmp_path / "first", common, fast=False))
    assert first["status"] == "ok"
    saved = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert saved["hardware"]["precision"] == "bf16-mixed"
    hparams = read_checkpoint(first["last_checkpoint"])["hyper_parameters"]
    assert hparams["precision"] == "bf16-mixed"
    assert hparams["channels_last"] == saved["hardware"]["channels_last"]

    use_cpu(monkeypatch, AVX2)  # auto alone would now pick 32-true; the checkpoint wins
    resume = [f"ckpt_path={first['last_checkpoint']}", "trainer.max_epochs=2"]
    resumed = run(compose_train(synthetic_root, tmp_path / "resumed", resume, fast=False))
    assert resumed["status"] == "ok"
    assert resumed["hardware"]["precision"] == "bf16-mixed"
    assert resumed["hardware"]["precision_reason"] == "kept from the checkpoint"
    # an explicit value still wins over the checkpoint
    explicit = [*resume, "trainer.precision=32-true", "trainer.max_epochs=2"]
    cfg = compose_train(synthetic_root, tmp_path / "explicit", explicit, fast=False)
    assert builders.resolve_hardware(cfg)["precision"] == "32-true"


def test_probe_picks_the_faster_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    times = {True: 0.01, False: 0.02}
    monkeypatch.setattr(hardware, "train_step_seconds", lambda *a, **k: times)
    config = {"_target_": "x", "image_size": 32}
    fast, why = hardware.probe_channels_last(
        lambda: torch.nn.Identity(), config, "32-true", torch.device("cpu"), tmp_path
    )
    assert fast is True and "channels_last 10 ms" in why
    times = {True: 0.03, False: 0.02}
    config2 = {"_target_": "y", "image_size": 32}
    assert not hardware.probe_channels_last(
        lambda: torch.nn.Identity(), config2, "32-true", torch.device("cpu"), tmp_path
    )[0]
