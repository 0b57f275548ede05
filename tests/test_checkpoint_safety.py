"""A checkpoint is data from a stranger: it never chooses the code that runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xray_lightning.errors import CheckpointError
from xray_lightning.modules import load_classifier

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "experiments" / "best" / "stage1.ckpt"


def hostile_checkpoint(tmp_path: Path, net_config: dict, loss_config: dict | None = None) -> Path:
    checkpoint = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["net_config"] = net_config
    if loss_config is not None:
        checkpoint["hyper_parameters"]["loss_config"] = loss_config
    path = tmp_path / "hostile.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("target", ["shutil.copyfile", "builtins.open", "os.system"])
def test_foreign_target_is_refused_with_no_side_effect(target: str, tmp_path: Path) -> None:
    victim, copy = tmp_path / "victim.txt", tmp_path / "copied.txt"
    victim.write_text("secret")
    config = {"_target_": target, "_args_": [str(victim), str(copy)]}
    path = hostile_checkpoint(tmp_path, config)
    with pytest.raises(CheckpointError, match="not a registered class"):
        load_classifier(path)
    assert not copy.exists()


def test_foreign_loss_target_is_refused(tmp_path: Path) -> None:
    path = hostile_checkpoint(
        tmp_path,
        torch.load(SHIPPED, weights_only=True)["hyper_parameters"]["net_config"],
        {"_target_": "shutil.rmtree", "path": str(tmp_path)},
    )
    with pytest.raises(CheckpointError, match="loss_config names 'shutil.rmtree'"):
        load_classifier(path)
    assert path.exists()


def test_nested_config_values_are_refused(tmp_path: Path) -> None:
    config = {
        "_target_": "xray_lightning.models.CNNBN",
        "channels": {"_target_": "shutil.copyfile", "src": "a", "dst": "b"},
    }
    with pytest.raises(CheckpointError, match=r"net_config\.channels must be a plain value"):
        load_classifier(hostile_checkpoint(tmp_path, config))


def test_registered_names_and_old_targets_load() -> None:
    module = load_classifier(SHIPPED)  # an old checkpoint: _target_ of a registered class
    assert type(module.net).__name__ == "CNNBN"


def test_predict_refuses_a_hostile_checkpoint_in_one_line(tmp_path: Path) -> None:
    victim, copy = tmp_path / "victim.txt", tmp_path / "copied.txt"
    victim.write_text("secret")
    path = hostile_checkpoint(
        tmp_path, {"_target_": "shutil.copyfile", "_args_": [str(victim), str(copy)]}
    )
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (150, 150), 80).save(image)
    command = [sys.executable, "-m", "xray_lightning.predict", "--stage1", str(path)]
    command += ["--stage2", str(REPO / "experiments" / "best" / "stage2.ckpt"), str(image)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert "not a registered class" in done.stderr and "Traceback" not in done.stderr
    assert not copy.exists()
