"""Rebuilding trained classifiers from checkpoints alone, with clear errors for the wrong file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from xray_lightning import losses, models
from xray_lightning.durable import save_torch_atomic
from xray_lightning.errors import CheckpointError

BINARY_STAGES = ("normal_vs_infected", "covid_vs_noncovid")
# A checkpoint is data from a stranger: it names a class of these registries and plain keyword
# values, and never chooses the code that runs (no hydra.utils.instantiate on its contents).
NETS: dict[str, type[nn.Module]] = {
    "cnn": models.ReportCNN,
    "cnn_bn": models.CNNBN,
    "resnet18": models.ResNet18,
}
LOSSES: dict[str, type[nn.Module]] = {
    "bce": losses.BCELoss,
    "ce": losses.CrossEntropyLoss,
    "hinge": losses.HingeLoss,
    "squared_hinge": losses.SquaredHingeLoss,
}
PLAIN = (bool, int, float, str, type(None))


def _registered(registry: dict[str, type[nn.Module]], target: Any) -> type[nn.Module] | None:
    """The class a config's ``name`` or ``_target_`` denotes, if it is a registered one."""
    for name, cls in registry.items():
        paths = {name, f"{cls.__module__}.{cls.__qualname__}"}
        paths.add(f"{cls.__module__.rsplit('.', 1)[0]}.{cls.__qualname__}")  # package re-export
        if target in paths:
            return cls
    return None


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    return isinstance(value, PLAIN)


def build_registered(
    config: Any, registry: dict[str, type[nn.Module]], key: str, path: str | Path
) -> nn.Module:
    """``registry[config's name](**plain keyword values)``, or :class:`CheckpointError`."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: hyper_parameters.{key} is not a mapping")
    target = config.get("name", config.get("_target_"))
    cls = _registered(registry, target)
    if cls is None:
        raise CheckpointError(
            f"{path}: hyper_parameters.{key} names {target!r}, which is not a registered class "
            f"(allowed: {', '.join(registry)}); a checkpoint never chooses the code that runs"
        )
    kwargs = {k: v for k, v in config.items() if k not in ("_target_", "name")}
    for name, value in kwargs.items():
        if not _plain(value):
            raise CheckpointError(
                f"{path}: hyper_parameters.{key}.{name} must be a plain value (number, string, "
                f"bool, null or a list of them); got {type(value).__name__}"
            )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: hyper_parameters.{key} does not build a {cls.__name__}: {error}"
        ) from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict (tensors and plain types only) or raise :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure means "not a checkpoint we can read"
        raise CheckpointError(
            f"{path} is not a readable xray-lightning checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if (
        not isinstance(hparams, dict)
        or "net_config" not in hparams
        or "state_dict" not in checkpoint
    ):
        raise CheckpointError(
            f"{path} is not an xray-lightning classifier checkpoint "
            "(expected 'state_dict' and 'hyper_parameters.net_config')"
        )
    return checkpoint


def describe(hparams: dict[str, Any]) -> str:
    """A short name of a checkpoint's architecture and stage, for error messages."""
    target = str(hparams.get("net_config", {}).get("_target_", "?")).rsplit(".", 1)[-1]
    return f"{target} for stage {hparams.get('stage', '?')}"


def build_parts(
    path: str | Path, expected_stage: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], nn.Module, nn.Module]:
    """(checkpoint, hyper-parameters, untrained net, loss) of a checkpoint of the expected stage:
    what both loaders (this module's and ``labeller``'s) start from."""
    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint["hyper_parameters"])
    if expected_stage is not None and hparams.get("stage") != expected_stage:
        raise CheckpointError(
            f"{path} holds a {describe(hparams)}, but a {expected_stage} checkpoint was expected"
        )
    net = build_registered(hparams["net_config"], NETS, "net_config", path)
    loss = build_registered(hparams.get("loss_config"), LOSSES, "loss_config", path)
    return checkpoint, hparams, net, loss


def load_classifier(path: str | Path, expected_stage: str | None = None):
    """Rebuild a BinaryClassifier or MulticlassClassifier (eval mode, CPU) from its checkpoint."""
    from xray_lightning.modules.binary import BinaryClassifier
    from xray_lightning.modules.multiclass import MulticlassClassifier

    checkpoint, hparams, net, loss = build_parts(path, expected_stage)
    stage = hparams.get("stage")
    module_class = BinaryClassifier if stage in BINARY_STAGES else MulticlassClassifier
    module = module_class(net=net, loss=loss, **_constructor_hparams(hparams))
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise weights_mismatch(path, hparams, error) from None
    return module.eval()


def weights_mismatch(
    path: str | Path, hparams: dict[str, Any], error: Exception
) -> CheckpointError:
    """The error for weights that do not fit the architecture the checkpoint names."""
    return CheckpointError(
        f"{path}: weights do not fit the architecture its config names ({describe(hparams)}): "
        f"{str(error).splitlines()[0]}"
    )


def check_compatible(path: str | Path, module: torch.nn.Module) -> None:
    """Before resuming: the checkpoint must be of the same stage and architecture as ``module``."""
    checkpoint = read_checkpoint(path)
    saved = checkpoint["hyper_parameters"]
    current = module.hparams
    if saved.get("stage") != current.get("stage") or saved.get("net_config") != current.get(
        "net_config"
    ):
        raise CheckpointError(
            f"cannot resume from {path}: it holds a {describe(saved)} "
            f"({saved.get('net_config')}), but this run trains a {describe(current)} "
            f"({current.get('net_config')})"
        )


def save_weights_only(source: str | Path, target: str | Path) -> Path:
    """Write a small checkpoint with the weights and hyper-parameters only (no optimizer state)."""
    checkpoint = read_checkpoint(source)
    slim = {
        "state_dict": checkpoint["state_dict"],
        "hyper_parameters": checkpoint["hyper_parameters"],
        "pytorch-lightning_version": checkpoint.get("pytorch-lightning_version"),
    }
    return save_torch_atomic(slim, target)


def _constructor_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "stage",
        "class_names",
        "threshold",
        "net_config",
        "loss_config",
        "preprocess",
        "channels_last",
    )
    return {key: hparams[key] for key in keys if key in hparams}
