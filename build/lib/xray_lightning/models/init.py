"""Weight-initialisation schemes for conv and linear layers (the ``init`` config group).

Hydra builds ``functools.partial(apply_init, scheme=..., **params)`` and the training code
calls ``init_fn(net)``. Only the weights of Conv1d/2d/3d and Linear layers are touched, and
their biases are set to zero; normalisation layers keep PyTorch's init (weight 1, bias 0).
``scheme="default"`` touches nothing at all, so PyTorch's (or torchvision's) init stays.
"""

from __future__ import annotations

from torch import nn

from xray_lightning.settings import check, one_of, positive

from ._checks import ModelConfigError

SCHEMES = ("default", "zeros", "normal", "xavier", "kaiming")
_DISTRIBUTIONS = ("normal", "uniform")
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    check(one_of(*choices), value, f"apply_init: {name}", ModelConfigError)


def _check_positive(name: str, value: object) -> None:
    check(positive(), value, f"apply_init: {name}", ModelConfigError)


def apply_init(
    net: nn.Module,
    scheme: str = "default",
    *,
    mean: float = 0.0,
    std: float = 0.05,
    distribution: str = "normal",
    gain: float = 1.0,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
) -> nn.Module:
    """Initialise ``net``'s conv and linear layers in place and return ``net``.

    Schemes: ``default`` (no change), ``zeros`` (all weights 0), ``normal`` (N(mean, std^2)),
    ``xavier`` (Glorot, ``distribution`` normal/uniform, ``gain``), ``kaiming`` (He,
    ``distribution``, ``mode`` fan_in/fan_out, ``nonlinearity``). Biases become zero in
    every scheme but ``default``.
    """
    _check_choice("scheme", scheme, SCHEMES)
    if scheme == "default":
        return net
    if scheme == "normal":
        _check_positive("std", std)
    if scheme in ("xavier", "kaiming"):
        _check_choice("distribution", distribution, _DISTRIBUTIONS)
    if scheme == "xavier":
        _check_positive("gain", gain)
    if scheme == "kaiming":
        _check_choice("mode", mode, ("fan_in", "fan_out"))
        _check_choice("nonlinearity", nonlinearity, ("relu", "leaky_relu", "linear", "tanh"))

    layers = [m for m in net.modules() if isinstance(m, _LAYERS)]
    if not layers:
        raise ModelConfigError(
            f"apply_init: {type(net).__name__} has no Conv or Linear layers to initialise"
        )
    for layer in layers:
        weight = layer.weight
        if scheme == "zeros":
            nn.init.zeros_(weight)
        elif scheme == "normal":
            nn.init.normal_(weight, mean=float(mean), std=float(std))
        elif scheme == "xavier" and distribution == "normal":
            nn.init.xavier_normal_(weight, gain=float(gain))
        elif scheme == "xavier":
            nn.init.xavier_uniform_(weight, gain=float(gain))
        elif distribution == "normal":
            nn.init.kaiming_normal_(weight, mode=mode, nonlinearity=nonlinearity)
        else:
            nn.init.kaiming_uniform_(weight, mode=mode, nonlinearity=nonlinearity)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return net
