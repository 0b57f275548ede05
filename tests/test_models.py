"""Models, weight inits and their configs: shapes, gradients, init schemes, bad parameters."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from xray_lightning.losses import BCELoss, CrossEntropyLoss, HingeLoss, SquaredHingeLoss
from xray_lightning.models import CNNBN, ReportCNN, ResNet18, apply_init

CONF = Path(__file__).resolve().parents[1] / "conf"
LOSSES = [BCELoss, CrossEntropyLoss, HingeLoss, SquaredHingeLoss]
SMALL_MODELS = {
    "cnn": lambda **kw: ReportCNN(conv_channels=(4, 8, 8), fc_widths=(16, 8), **kw),
    "cnn_bn": lambda **kw: CNNBN(channels=(8, 16), **kw),
    "resnet18": lambda **kw: ResNet18(**kw),
}


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("loss_cls", LOSSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("model_name", list(SMALL_MODELS))
def test_every_model_trains_with_every_loss(model_name, loss_cls, num_classes):
    torch.manual_seed(0)
    loss_fn = loss_cls(num_classes=num_classes)
    net = SMALL_MODELS[model_name](in_channels=1, image_size=32, num_outputs=loss_fn.num_logits)
    x = torch.randn(4, 1, 32, 32)
    y = torch.tensor([0, 1, 1, 0]) if num_classes == 2 else torch.tensor([0, 1, 2, 1])
    logits = net(x)
    assert logits.shape == (4, loss_fn.num_logits)
    loss = loss_fn(logits, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    probs = loss_fn.probabilities(logits.detach())
    expected = (4,) if num_classes == 2 else (4, num_classes)
    assert probs.shape == expected
    assert ((probs >= 0) & (probs <= 1)).all()


def test_report_cnn_structure_follows_parameters():
    net = ReportCNN(image_size=150, conv_channels=(32, 64, 128), fc_widths=(100, 60), dropout=0.35)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    drops = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert [c.out_channels for c in convs] == [32, 64, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(p.kernel_size == 2 and p.stride == 2 for p in pools) and len(pools) == 3
    # valid 3x3 convs: 150 -> 148 -> 74 -> 72 -> 36 -> 34 -> 17
    assert linears[0].in_features == 128 * 17 * 17
    assert [lin.out_features for lin in linears] == [100, 60, 1]
    assert [d.p for d in drops] == [0.35, 0.35]


@pytest.mark.parametrize("model_cls", [ReportCNN, CNNBN, ResNet18], ids=lambda c: c.__name__)
def test_models_accept_channels_last_bf16_autocast(model_cls):
    net = model_cls(image_size=64, num_outputs=2).to(memory_format=torch.channels_last)
    x = torch.randn(2, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    out.float().sum().backward()
    assert out.shape == (2, 2) and torch.isfinite(out.float()).all()


def test_report_cnn_rejects_input_of_another_size():
    net = ReportCNN(image_size=64)
    with pytest.raises(ValueError, match=r"\[B, 1, 64, 64\]"):
        net(torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize(
    ("build", "param"),
    [
        (lambda: ReportCNN(image_size=20), "image_size"),
        (lambda: ReportCNN(conv_channels=[]), "conv_channels"),
        (lambda: ReportCNN(conv_channels=[32, 0]), "conv_channels"),
        (lambda: ReportCNN(fc_widths=[100, -1]), "fc_widths"),
        (lambda: ReportCNN(dropout=1.0), "dropout"),
        (lambda: ReportCNN(dropout=-0.1), "dropout"),
        (lambda: ReportCNN(num_outputs=0), "num_outputs"),
        (lambda: ReportCNN(in_channels=True), "in_channels"),
        (lambda: ReportCNN(padding=-1), "padding"),
        (lambda: CNNBN(image_size=4), "image_size"),
        (lambda: CNNBN(channels=[]), "channels"),
        (lambda: CNNBN(dropout=2), "dropout"),
        (lambda: CNNBN(blocks_per_stage=0), "blocks_per_stage"),
        (lambda: CNNBN(norm="layer"), "norm"),
        (lambda: ResNet18(image_size=16), "image_size"),
        (lambda: ResNet18(num_outputs=0), "num_outputs"),
    ],
)
def test_bad_model_parameters_raise_value_error_naming_them(build, param):
    with pytest.raises(ValueError, match=param):
        build()


def test_report_cnn_too_small_message_gives_the_minimum_size():
    with pytest.raises(ValueError, match="at least 22"):
        ReportCNN(image_size=21, conv_channels=(4, 4, 4))
    ReportCNN(image_size=22, conv_channels=(4, 4, 4))  # the minimum it names works


def test_resnet18_has_one_channel_stem_and_no_pretrained_weights():
    torch.manual_seed(0)
    a, b = ResNet18(), ResNet18()
    assert a.net.conv1.in_channels == 1
    assert not torch.equal(a.net.conv1.weight, b.net.conv1.weight)  # random, not loaded


# ---- configs -------------------------------------------------------------------------------


def _model_yamls() -> list[Path]:
    return sorted((CONF / "net").glob("*.yaml"))


def test_model_config_group_has_the_expected_files():
    names = {p.stem for p in _model_yamls()}
    expected = {"cnn", "cnn_bn", "resnet18", "cnn_fc1_60", "cnn_fc200_100", "cnn_no_conv3"}
    assert expected <= names


@pytest.mark.parametrize("path", _model_yamls(), ids=lambda p: p.stem)
def test_model_configs_build_at_150_without_fixing_size_or_outputs(path):
    cfg = OmegaConf.load(path)
    assert "image_size" not in cfg and "num_outputs" not in cfg
    net = instantiate(cfg, image_size=150, num_outputs=3)
    with torch.no_grad():
        out = net.eval()(torch.zeros(2, 1, 150, 150))
    assert out.shape == (2, 3)


@pytest.mark.parametrize(
    ("name", "convs", "widths"),
    [
        ("cnn", [32, 64, 128], [100, 60, 1]),
        ("cnn_fc1_60", [32, 64, 128], [60, 60, 1]),
        ("cnn_fc200_100", [32, 64, 128], [200, 100, 1]),
        ("cnn_no_conv3", [32, 64], [60, 30, 1]),
    ],
)
def test_report_variants_differ_as_their_names_say(name, convs, widths):
    net = instantiate(OmegaConf.load(CONF / "net" / f"{name}.yaml"), image_size=150, num_outputs=1)
    assert [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)] == convs
    assert [m.out_features for m in net.modules() if isinstance(m, nn.Linear)] == widths


def test_model_group_composes_with_hydra():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF / "net"), version_base="1.3"):
        cfg = compose(config_name="cnn_no_conv3")
    assert instantiate(cfg, image_size=64, num_outputs=1)(torch.zeros(1, 1, 64, 64)).shape == (1, 1)


# ---- inits ---------------------------------------------------------------------------------


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _wide_net() -> nn.Sequential:
    """Layers big enough for their weight statistics to be checked to a few per cent."""
    return nn.Sequential(
        nn.Conv2d(64, 128, 3), nn.BatchNorm2d(128), nn.Flatten(), nn.Linear(800, 600)
    )


def test_zeros_init_zeroes_weights_and_biases_but_not_batchnorm():
    net = CNNBN(image_size=32, channels=(8, 16))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(0.5)
    assert apply_init(net, "zeros") is net
    for layer in _layers(net):
        assert torch.count_nonzero(layer.weight) == 0
        assert layer.bias is None or torch.count_nonzero(layer.bias) == 0
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(bn.weight == 0.5) for bn in bns)


@pytest.mark.parametrize("model_cls", [ReportCNN, CNNBN, ResNet18], ids=lambda c: c.__name__)
def test_default_init_leaves_the_network_untouched(model_cls):
    net = model_cls(image_size=64)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    apply_init(net, "default")
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_normal_init_has_requested_mean_and_std():
    torch.manual_seed(0)
    net = apply_init(_wide_net(), "normal", mean=0.1, std=0.02)
    for layer in _layers(net):
        w = layer.weight
        assert w.mean().item() == pytest.approx(0.1, abs=0.002)
        assert w.std().item() == pytest.approx(0.02, rel=0.03)
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_xavier_init_matches_glorot_variance(distribution):
    torch.manual_seed(0)
    net = apply_init(_wide_net(), "xavier", distribution=distribution, gain=2.0)
    for layer in _layers(net):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        std = 2.0 * math.sqrt(2.0 / (fan_in + fan_out))
        assert layer.weight.std().item() == pytest.approx(std, rel=0.03)
        if distribution == "uniform":
            assert layer.weight.abs().max().item() <= std * math.sqrt(3) + 1e-6
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_init_matches_he_variance(mode):
    torch.manual_seed(0)
    net = apply_init(_wide_net(), "kaiming", mode=mode, nonlinearity="relu")
    for layer in _layers(net):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        fan = fan_in if mode == "fan_in" else fan_out
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan), rel=0.03)
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"scheme": "he"}, "scheme"),
        ({"scheme": "normal", "std": 0.0}, "std"),
        ({"scheme": "xavier", "distribution": "gaussian"}, "distribution"),
        ({"scheme": "xavier", "gain": -1.0}, "gain"),
        ({"scheme": "kaiming", "mode": "fan_avg"}, "mode"),
    ],
)
def test_bad_init_parameters_raise_value_error_naming_them(kwargs, param):
    net = _wide_net()
    before = net[0].weight.clone()
    with pytest.raises(ValueError, match=param):
        apply_init(net, **kwargs)
    assert torch.equal(net[0].weight, before)  # nothing half-initialised


def test_init_of_a_net_without_conv_or_linear_layers_is_an_error():
    with pytest.raises(ValueError, match="no Conv or Linear"):
        apply_init(nn.Sequential(nn.ReLU()), "xavier")


@pytest.mark.parametrize("name", ["default", "zeros", "normal", "xavier", "kaiming"])
def test_init_configs_build_a_callable_that_applies_their_scheme(name):
    torch.manual_seed(0)
    init_fn = instantiate(OmegaConf.load(CONF / "init" / f"{name}.yaml"))
    net = _wide_net()
    before = net[3].weight.clone()
    init_fn(net)
    w = net[3].weight
    if name == "default":
        assert torch.equal(w, before)
    elif name == "zeros":
        assert torch.count_nonzero(w) == 0
    elif name == "normal":
        assert w.std().item() == pytest.approx(0.05, rel=0.03)
    elif name == "xavier":
        assert w.std().item() == pytest.approx(math.sqrt(2.0 / (800 + 600)), rel=0.03)
    else:
        assert w.std().item() == pytest.approx(math.sqrt(2.0 / 800), rel=0.03)


# ---- a tiny overfit ------------------------------------------------------------------------


def _separable_batch(num_classes: int, n: int = 24, size: int = 24):
    """Each class lights a different quadrant, on noise: trivially separable."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(n) % num_classes
    x = 0.3 * torch.randn(n, 1, size, size, generator=gen)
    half = size // 2
    corners = [(0, 0), (half, half), (0, half)]
    for i, label in enumerate(y.tolist()):
        r, c = corners[label]
        x[i, 0, r : r + half, c : c + half] += 1.0
    return x, y


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("loss_cls", LOSSES, ids=lambda c: c.__name__)
def test_report_cnn_overfits_a_separable_batch(loss_cls, num_classes):
    torch.manual_seed(0)
    x, y = _separable_batch(num_classes)
    loss_fn = loss_cls(num_classes=num_classes)
    net = ReportCNN(
        image_size=24,
        num_outputs=loss_fn.num_logits,
        conv_channels=(8, 16),
        fc_widths=(32, 16),
        dropout=0.25,
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def evaluate() -> tuple[torch.Tensor, float]:
        net.eval()
        with torch.no_grad():
            logits = net(x)
        net.train()
        probs = loss_fn.probabilities(logits)
        pred = (probs > 0.5).long() if num_classes == 2 else probs.argmax(dim=1)
        return pred, loss_fn(logits, y).item()

    first = evaluate()[1]
    for step in range(1, 81):
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
        if step % 10 == 0:
            pred, loss = evaluate()
            if torch.equal(pred, y) and loss < 0.5 * first:
                break
    assert torch.equal(pred, y), f"not separated after {step} steps"
    assert loss < 0.5 * first, f"loss {first:.3f} -> {loss:.3f} after {step} steps"


def test_groupnorm_variant_normalises_each_image_on_its_own():
    torch.manual_seed(0)
    net = CNNBN(image_size=32, channels=(8, 16), norm="group", dropout=0.0).train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in net.modules()) == 5
    x = torch.randn(4, 1, 32, 32)
    alone = net(x[:1])
    in_batch = net(torch.cat([x[:1], x[1:] * 10 + 3]))[:1]  # other images do not matter
    assert torch.allclose(alone, in_batch, atol=1e-5)
    batchnorm = CNNBN(image_size=32, channels=(8, 16), dropout=0.0).train()
    assert not torch.allclose(
        batchnorm(x[:1].repeat(2, 1, 1, 1))[:1], batchnorm(torch.cat([x[:1], x[1:2] * 10 + 3]))[:1]
    )
