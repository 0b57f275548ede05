"""Losses: torch references, class weights, pos_weight, probabilities, bad parameters/inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from xray_lightning.losses import (
    BCELoss,
    CrossEntropyLoss,
    HingeLoss,
    LossInputError,
    SquaredHingeLoss,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
LOSSES = [BCELoss, CrossEntropyLoss, HingeLoss, SquaredHingeLoss]


def ids(cls: type) -> str:
    return cls.__name__


def _batch(loss_fn, n: int = 64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, loss_fn.num_logits, generator=gen)
    targets = torch.randint(0, loss_fn.num_classes, (n,), generator=gen)
    return logits, targets


@pytest.mark.parametrize(
    ("loss_cls", "binary", "multi"),
    [(BCELoss, 1, 3), (CrossEntropyLoss, 2, 3), (HingeLoss, 1, 3), (SquaredHingeLoss, 1, 3)],
)
def test_num_logits(loss_cls, binary, multi):
    assert loss_cls(num_classes=2).num_logits == binary
    assert loss_cls(num_classes=3).num_logits == multi
    assert loss_cls(num_classes=5).num_logits == 5


# ---- torch references ----------------------------------------------------------------------


def test_binary_bce_matches_bce_with_logits():
    loss_fn = BCELoss()
    z, y = _batch(loss_fn)
    ref = nn.BCEWithLogitsLoss()(z[:, 0], y.float())
    torch.testing.assert_close(loss_fn(z, y), ref)


def test_bce_pos_weight_matches_bce_with_logits_pos_weight():
    loss_fn = BCELoss(pos_weight=3.0)
    z, y = _batch(loss_fn)
    ref = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))(z[:, 0], y.float())
    torch.testing.assert_close(loss_fn(z, y), ref)
    assert loss_fn(z, y) > BCELoss()(z, y)  # positives weigh more
    negatives = y == 0
    torch.testing.assert_close(
        loss_fn(z[negatives], y[negatives]), BCELoss()(z[negatives], y[negatives])
    )


def test_multiclass_bce_is_one_vs_rest_on_one_hot_targets():
    loss_fn = BCELoss(num_classes=3)
    z, y = _batch(loss_fn)
    ref = nn.BCEWithLogitsLoss()(z, F.one_hot(y, 3).float())
    torch.testing.assert_close(loss_fn(z, y), ref)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_cross_entropy_matches_torch(num_classes):
    loss_fn = CrossEntropyLoss(num_classes=num_classes)
    z, y = _batch(loss_fn)
    torch.testing.assert_close(loss_fn(z, y), nn.CrossEntropyLoss()(z, y))


@pytest.mark.parametrize("num_classes", [3, 4])
def test_weighted_cross_entropy_matches_torch(num_classes):
    weights = [0.5, 2.0, 1.0, 3.0][:num_classes]
    loss_fn = CrossEntropyLoss(num_classes=num_classes, class_weights=weights)
    z, y = _batch(loss_fn)
    ref = nn.CrossEntropyLoss(weight=torch.tensor(weights))(z, y)
    torch.testing.assert_close(loss_fn(z, y), ref)


@pytest.mark.parametrize(("loss_cls", "p"), [(HingeLoss, 1), (SquaredHingeLoss, 2)], ids=["1", "2"])
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_multiclass_hinge_matches_multi_margin_loss(loss_cls, p, margin):
    loss_fn = loss_cls(num_classes=3, margin=margin)
    z, y = _batch(loss_fn)
    ref = nn.MultiMarginLoss(p=p, margin=margin)(z, y)
    torch.testing.assert_close(loss_fn(z, y), ref)


@pytest.mark.parametrize(("loss_cls", "p"), [(HingeLoss, 1), (SquaredHingeLoss, 2)], ids=["1", "2"])
def test_weighted_multiclass_hinge_is_the_weighted_mean_of_multi_margin_loss(loss_cls, p):
    weights = torch.tensor([0.5, 2.0, 1.0])
    loss_fn = loss_cls(num_classes=3, class_weights=weights.tolist())
    z, y = _batch(loss_fn)
    ref = nn.MultiMarginLoss(p=p, weight=weights, reduction="sum")(z, y) / weights[y].sum()
    torch.testing.assert_close(loss_fn(z, y), ref)


@pytest.mark.parametrize(("loss_cls", "p"), [(HingeLoss, 1), (SquaredHingeLoss, 2)], ids=["1", "2"])
def test_binary_hinge_maps_targets_to_minus_plus_one(loss_cls, p):
    loss_fn = loss_cls()
    z, y = _batch(loss_fn)
    # MultiMarginLoss on scores [-s/2, s/2] is max(0, 1 - y*s)^p / 2 with y in {-1, +1}.
    pair = torch.cat([-z / 2, z / 2], dim=1)
    ref = 2 * nn.MultiMarginLoss(p=p)(pair, y)
    torch.testing.assert_close(loss_fn(z, y), ref)
    # a confident right answer costs nothing, a wrong one costs more than the margin
    assert loss_fn(torch.tensor([[3.0], [-3.0]]), torch.tensor([1, 0])) == 0
    assert loss_fn(torch.tensor([[-0.5]]), torch.tensor([1])) == pytest.approx(1.5**p)


# ---- class weights -------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("loss_cls", LOSSES, ids=ids)
def test_class_weights_change_the_loss_as_expected(loss_cls, num_classes):
    plain = loss_cls(num_classes=num_classes)
    z, y = _batch(plain)
    base = plain(z, y)
    # uniform weights, whatever their scale, change nothing (weighted mean)
    uniform = loss_cls(num_classes=num_classes, class_weights=[2.5] * num_classes)
    torch.testing.assert_close(uniform(z, y), base)
    # weight only on class 1: the loss of the class-1 samples alone
    only_one = [0.0] * num_classes
    only_one[1] = 1.0
    ones = y == 1
    torch.testing.assert_close(
        loss_cls(num_classes=num_classes, class_weights=only_one)(z, y), plain(z[ones], y[ones])
    )
    # up-weighting the class whose samples cost most raises the loss
    per_class = torch.stack([plain(z[y == c], y[y == c]) for c in range(num_classes)])
    heavy = [1.0] * num_classes
    heavy[int(per_class.argmax())] = 5.0
    assert loss_cls(num_classes=num_classes, class_weights=heavy)(z, y) > base


def test_batch_of_zero_weight_classes_gives_zero_not_nan():
    loss_fn = CrossEntropyLoss(class_weights=[0.0, 1.0])
    z = torch.randn(4, 2)
    assert loss_fn(z, torch.zeros(4, dtype=torch.long)).item() == 0.0


def test_class_weights_follow_the_module_but_stay_out_of_checkpoints():
    loss_fn = CrossEntropyLoss(num_classes=3, class_weights=[1.0, 2.0, 3.0])
    assert "class_weights" in dict(loss_fn.named_buffers())
    assert "class_weights" not in loss_fn.state_dict()
    assert loss_fn.to(torch.float64).class_weights.dtype == torch.float64


def test_class_weights_accept_a_tensor():
    loss_fn = BCELoss(class_weights=torch.tensor([1.0, 3.0]))
    assert loss_fn.class_weights.tolist() == [1.0, 3.0]


# ---- probabilities -------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("loss_cls", LOSSES, ids=ids)
def test_probabilities_shape_range_and_order(loss_cls, num_classes):
    loss_fn = loss_cls(num_classes=num_classes)
    z, _ = _batch(loss_fn)
    probs = loss_fn.probabilities(z)
    assert ((probs >= 0) & (probs <= 1)).all()
    if num_classes == 2:
        assert probs.shape == (z.shape[0],)
        # a larger class-1 score means a larger class-1 probability
        score = z[:, 0] if loss_fn.num_logits == 1 else z[:, 1] - z[:, 0]
        order = score.argsort()
        assert (probs[order].diff() >= 0).all()
    else:
        assert probs.shape == (z.shape[0], num_classes)
        torch.testing.assert_close(probs.sum(dim=1), torch.ones(z.shape[0]))
        assert torch.equal(probs.argmax(dim=1), z.argmax(dim=1))


def test_binary_cross_entropy_probability_is_softmax_of_class_one():
    z = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    torch.testing.assert_close(CrossEntropyLoss().probabilities(z), torch.softmax(z, 1)[:, 1])


def test_bf16_logits_give_a_float32_loss():
    loss_fn = CrossEntropyLoss(num_classes=3)
    z, y = _batch(loss_fn)
    loss = loss_fn(z.bfloat16(), y)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, loss_fn(z.bfloat16().float(), y))


def test_bce_label_smoothing_trains_towards_softened_targets():
    loss_fn = BCELoss(label_smoothing=0.1)
    z, y = _batch(loss_fn)
    ref = nn.BCEWithLogitsLoss()(z[:, 0], y.float() * 0.9 + 0.05)
    torch.testing.assert_close(loss_fn(z, y), ref)
    # the minimum is no longer at an infinite logit: a sure, right logit now costs more than 0.95's
    sure, softened = torch.tensor([[12.0]]), torch.tensor([[torch.logit(torch.tensor(0.95))]])
    one = torch.ones(1, dtype=torch.long)
    assert loss_fn(sure, one) > loss_fn(softened, one)
    assert BCELoss()(sure, one) < BCELoss()(softened, one)
    multi = BCELoss(num_classes=3, label_smoothing=0.3)
    z, y = _batch(multi)
    target = F.one_hot(y, 3).float() * 0.7 + 0.1
    torch.testing.assert_close(multi(z, y), nn.BCEWithLogitsLoss()(z, target))


@pytest.mark.parametrize("num_classes", [2, 3])
def test_cross_entropy_label_smoothing_is_torchs(num_classes):
    loss_fn = CrossEntropyLoss(num_classes=num_classes, label_smoothing=0.2)
    z, y = _batch(loss_fn)
    ref = nn.CrossEntropyLoss(label_smoothing=0.2)(z, y)
    torch.testing.assert_close(loss_fn(z, y), ref)
    assert not torch.allclose(loss_fn(z, y), CrossEntropyLoss(num_classes=num_classes)(z, y))


# ---- bad parameters and inputs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "param"),
    [
        (lambda: CrossEntropyLoss(num_classes=1), "num_classes"),
        (lambda: HingeLoss(num_classes=2.0), "num_classes"),
        (lambda: BCELoss(class_weights=[1.0]), "class_weights"),
        (lambda: CrossEntropyLoss(num_classes=3, class_weights=[1.0, -1.0, 1.0]), "class_weights"),
        (lambda: HingeLoss(class_weights=[0.0, 0.0]), "class_weights"),
        (lambda: SquaredHingeLoss(class_weights=[1.0, float("nan")]), "class_weights"),
        (lambda: CrossEntropyLoss(class_weights="balanced"), "class_weights"),
        (lambda: BCELoss(pos_weight=0.0), "pos_weight"),
        (lambda: BCELoss(pos_weight=-2), "pos_weight"),
        (lambda: BCELoss(pos_weight=2.0, class_weights=[1.0, 2.0]), "pos_weight"),
        (lambda: HingeLoss(margin=0.0), "margin"),
        (lambda: SquaredHingeLoss(margin=float("inf")), "margin"),
        (lambda: BCELoss(label_smoothing=0.5), "label_smoothing"),
        (lambda: CrossEntropyLoss(label_smoothing=-0.1), "label_smoothing"),
        (lambda: BCELoss(label_smoothing="a lot"), "label_smoothing"),
    ],
)
def test_bad_loss_parameters_raise_value_error_naming_them(build, param):
    with pytest.raises(ValueError, match=param):
        build()


@pytest.mark.parametrize(
    ("logits", "targets", "match"),
    [
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), r"logits must be .*\[B, 1\]"),
        (torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), r"logits must be .*\[B, 1\]"),
        (torch.zeros(4, 1), torch.zeros(4), "integer class indices"),
        (torch.zeros(4, 1), torch.zeros(3, dtype=torch.long), "B=4"),
        (torch.zeros(4, 1), torch.tensor([0, 1, 2, 1]), r"0\.\.1"),
        (torch.zeros(4, 1), torch.tensor([0, -1, 0, 1]), r"0\.\.1"),
    ],
)
def test_bad_inputs_raise_one_clear_error(logits, targets, match):
    with pytest.raises(LossInputError, match=match):
        HingeLoss()(logits, targets)


# ---- configs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "loss_cls"),
    [
        ("bce", BCELoss),
        ("ce", CrossEntropyLoss),
        ("hinge", HingeLoss),
        ("squared_hinge", SquaredHingeLoss),
    ],
)
@pytest.mark.parametrize("num_classes", [2, 3])
def test_loss_configs_build_with_num_classes_and_weights_from_the_caller(
    name, loss_cls, num_classes
):
    cfg = OmegaConf.load(CONF / "loss" / f"{name}.yaml")
    assert "num_classes" not in cfg
    loss_fn = instantiate(cfg, num_classes=num_classes)
    assert type(loss_fn) is loss_cls and loss_fn.num_classes == num_classes
    weights = [1.0] + [2.0] * (num_classes - 1)
    weighted = instantiate(cfg, num_classes=num_classes, class_weights=weights)
    assert weighted.class_weights.tolist() == weights
    z, y = _batch(loss_fn)
    assert torch.isfinite(loss_fn(z, y)) and torch.isfinite(weighted(z, y))
