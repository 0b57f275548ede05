"""Rebuilding trained classifiers from checkpoints alone, with clear errors for the wrong file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from xray_lightning.errors import CheckpointError

BINARY_STAGES = ("normal_vs_infected", "covid_vs_noncovid")


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


def load_classifier(path: str | Path, expected_stage: str | None = None):
    """Rebuild a BinaryClassifier or MulticlassClassifier (eval mode, CPU) from its checkpoint."""
    from xray_lightning.modules.binary import BinaryClassifier
    from xray_lightning.modules.multiclass import MulticlassClassifier

    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint["hyper_parameters"])
    stage = hparams.get("stage")
    if expected_stage is not None and stage != expected_stage:
        raise CheckpointError(
            f"{path} holds a {describe(hparams)}, but a {expected_stage} checkpoint was expected"
        )
    module_class = BinaryClassifier if stage in BINARY_STAGES else MulticlassClassifier
    net = instantiate(hparams["net_config"])
    loss = instantiate(hparams["loss_config"])
    module = module_class(net=net, loss=loss, **_constructor_hparams(hparams))
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: weights do not fit the architecture its config names ({describe(hparams)}): "
            f"{str(error).splitlines()[0]}"
        ) from None
    return module.eval()


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
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    torch.save(slim, tmp)
    tmp.replace(target)
    return target


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
