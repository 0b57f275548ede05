"""Faster labelling: BatchNorm folded into the convolutions, stage 2 only where it is needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xray_lightning.models import CNNBN, ResNet18
from xray_lightning.models.fusion import fold_batchnorm
from xray_lightning.modules import CascadeModule

REPO = Path(__file__).resolve().parents[1]
BEST = REPO / "experiments" / "best"


def trained_like(net: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, as after training."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize("make", [lambda: CNNBN(image_size=64), lambda: ResNet18(image_size=64)])
def test_folding_keeps_the_outputs(make) -> None:
    torch.manual_seed(0)
    net = trained_like(make())
    images = torch.randn(4, 1, 64, 64)
    with torch.no_grad():
        before = net(images)
        folded = fold_batchnorm(net)
        after = net(images)
    assert folded > 0
    assert torch.allclose(before, after, atol=1e-4, rtol=1e-4)


def test_folding_refuses_a_training_network() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(CNNBN(image_size=64).train())


def test_label_proba_runs_stage_2_only_on_images_called_infected() -> None:
    cascade = CascadeModule.from_checkpoints(BEST / "stage1.ckpt", BEST / "stage2.ckpt")
    torch.manual_seed(1)
    images = torch.randn(16, 1, 150, 150)
    p_inf, p_cov_all = cascade.predict_proba(images)
    cascade.t1 = float(p_inf.median())  # both sides of the threshold, whatever the inputs
    q_inf, q_cov, spread = cascade.label_proba(images)
    assert torch.equal(spread, torch.zeros(16))  # one model per stage: nothing to disagree on
    infected = p_inf >= cascade.t1
    assert 0 < int(infected.sum()) < 16
    assert torch.equal(p_inf, q_inf)
    assert torch.isnan(q_cov[~infected]).all()
    assert torch.allclose(q_cov[infected], p_cov_all[infected], atol=1e-5)
    assert torch.equal(cascade.decide(q_inf, q_cov), cascade(images))


def test_the_plain_labeller_gives_the_lightning_cascades_probabilities() -> None:
    from xray_lightning.labeller import Labeller

    stage1, stage2 = BEST / "stage1.ckpt", BEST / "stage2.ckpt"
    labeller = Labeller.from_checkpoints(stage1, stage2)
    cascade = CascadeModule.from_checkpoints(stage1, stage2, fold_bn=True)
    images = torch.randn(24, 1, 150, 150, generator=torch.Generator().manual_seed(0))
    expected = cascade.label_proba(images)
    got = labeller.label_proba(images)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, equal_nan=True)
    assert torch.equal(labeller.decide(*got[:2]), cascade.decide(*expected[:2]))
    assert labeller.preprocess == cascade.preprocess


def test_predict_imports_neither_lightning_nor_torchvision() -> None:
    import subprocess
    import sys

    heavy = ("pytorch_lightning", "lightning_fabric", "torchmetrics", "torchvision", "hydra")
    code = f"import sys, xray_lightning.predict; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_command_line_tools_are_siblings() -> None:
    """predict, evaluate and report read runs through xray_lightning.runs, never each other."""
    import ast

    tools = ("predict", "evaluate", "report")
    for tool in tools:
        tree = ast.parse((REPO / "xray_lightning" / f"{tool}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        for other in tools:
            assert f"xray_lightning.{other}" not in imported, f"{tool} imports {other}"


def test_an_ensemble_averages_its_members() -> None:
    from xray_lightning.ensemble import StageEnsemble
    from xray_lightning.labeller import Labeller

    stage1, stage2 = BEST / "stage1.ckpt", BEST / "stage2.ckpt"
    single = Labeller.from_checkpoints(stage1, stage2)
    twice = Labeller.from_checkpoints([stage1, stage1], [stage2, stage2])
    assert isinstance(twice.stage1, StageEnsemble) and len(twice.stage1.members) == 2
    images = torch.randn(8, 1, 150, 150, generator=torch.Generator().manual_seed(1))
    for a, b in zip(single.predict_proba(images), twice.predict_proba(images), strict=True):
        torch.testing.assert_close(a, b)
    # members that differ: the mean of their probabilities
    other = twice.stage1.members[1]
    for module in other.net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.mul_(0.5)
            break
    p_first, p_other = twice.stage1.members[0].proba(images), other.proba(images)
    torch.testing.assert_close(twice.stage1.proba(images), (p_first + p_other) / 2)
