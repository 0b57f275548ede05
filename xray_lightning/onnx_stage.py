"""A frozen stage network run by ONNX Runtime: the fast path for labelling on a CPU.

On the 2-core AVX2 CPU, ONNX Runtime's CPU kernels run the shipped stage network 1.54x faster
than PyTorch's eager oneDNN path (BatchNorm folded in both, channels_last in PyTorch; 0.85x the
wall time of a whole ``predict``; ``experiments/benchmarks.md``), with logits equal to float32
rounding. A network is exported once per checkpoint (``torch.onnx.export``, the torch.export-based
exporter) into the cache dir, ``<cache>/onnx/<key>.onnx``; the key is the checkpoint's content
digest with the exporter's versions, so a retrained or replaced checkpoint never reuses another's
file. A cached file that does not load is exported again. Training, BatchNorm adaptation and
Grad-CAM stay in PyTorch.
"""

from __future__ import annotations

import copy
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy
import torch
from torch import nn

from xray_lightning.data.cache import default_cache_dir, file_digest
from xray_lightning.durable import write_bytes_atomic
from xray_lightning.errors import XrayLightningError

RUNTIMES = ("auto", "onnx", "torch")
# Images per session run. ONNX Runtime's memory arena grows with the largest batch it has seen:
# on the shipped network, 64 images peak at ~280 MiB and 256 at ~880 MiB per session, and 64 is
# as fast (238 vs 224 img/s on the 2-core AVX2 CPU), so evaluate's 256-image batches run in 4.
CHUNK = 64
_NEEDS = ("onnxruntime", "onnxscript", "onnx")


class RuntimeUnavailableError(XrayLightningError):
    """``--runtime onnx`` asked for on an installation without ONNX Runtime or its exporter."""


def missing_packages() -> list[str]:
    """Those of ONNX Runtime and the exporter's packages that are not installed."""
    return [name for name in _NEEDS if find_spec(name) is None]


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    return runtime


def cache_path(checkpoint: str | Path, cache_dir: Path | None = None) -> Path:
    """Where the exported network of ``checkpoint`` (BatchNorm folded) is kept."""
    from importlib.metadata import version

    versions = f"torch{torch.__version__}-onnxscript{version('onnxscript')}".replace("+", "_")
    digest = file_digest(Path(checkpoint))
    return (cache_dir or default_cache_dir()) / "onnx" / f"{digest}-folded-{versions}.onnx"


def export(net: nn.Module, image_size: int, path: Path) -> Path:
    """Write ``net`` (eval mode) as ONNX with a free batch size, atomically."""
    frozen = copy.deepcopy(net).eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(2, 1, image_size, image_size)
    program = torch.onnx.export(
        frozen,
        (example,),
        dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
        verbose=False,
        input_names=["images"],
        output_names=["logits"],
    )
    return write_bytes_atomic(path, program.model_proto.SerializeToString())


class OnnxNet:
    """Images [B, 1, H, W] -> logits, by an ONNX Runtime session on the CPU."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        # no busy-waiting between calls: PyTorch decodes and preprocesses the next batch there
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.path = path

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        chunks = images.float().contiguous().split(CHUNK)
        logits = [self.session.run(None, {"images": chunk.numpy()})[0] for chunk in chunks]
        return torch.from_numpy(numpy.concatenate(logits))


def onnx_net(
    checkpoint: str | Path, net: nn.Module, image_size: int, required: bool = True
) -> OnnxNet | None:
    """The cached ONNX Runtime copy of ``net`` (exported from ``checkpoint``), exporting it first
    where there is none or the cached file does not load. Where ONNX Runtime is missing or the
    export fails: :class:`RuntimeUnavailableError` if ``required`` (``--runtime onnx``), else
    ``None`` with a one-line note (``auto``: the stage runs in PyTorch)."""
    missing = missing_packages()
    if missing:
        if required:
            raise RuntimeUnavailableError(
                f"runtime onnx needs {', '.join(missing)} (pip install -e .), or pass "
                "--runtime torch"
            )
        return None
    path = cache_path(checkpoint)
    if path.is_file():
        try:
            return OnnxNet(path)
        except Exception as error:  # a truncated or foreign file: export it again
            print(f"note: re-exporting {path.name} ({type(error).__name__})", file=sys.stderr)
    print(
        f"preparing ONNX Runtime for {Path(checkpoint).name} (once per model, cached in "
        f"{path.parent})",
        file=sys.stderr,
    )
    try:
        export(net, image_size, path)
        return OnnxNet(path)
    except Exception as error:
        if required:
            raise RuntimeUnavailableError(
                f"{checkpoint}: could not run it by ONNX Runtime ({type(error).__name__}: "
                f"{error}); pass --runtime torch"
            ) from error
        print(
            f"note: {Path(checkpoint).name} runs in PyTorch ({type(error).__name__})",
            file=sys.stderr,
        )
        return None


def warm(model: Any) -> list[Path]:
    """Export every stage of a model folder/run into the cache (``make install`` warms the
    shipped model, so its first ``predict`` does not pay the export)."""
    from xray_lightning.labeller import Labeller
    from xray_lightning.runs import cascade_source

    source = cascade_source(model=Path(model))
    labeller = Labeller.from_checkpoints(
        source.stage1_checkpoints, source.stage2_checkpoints, runtime="onnx"
    )
    stages = (labeller.stage1, labeller.stage2)  # each a StageNet or an ensemble of them
    return [net.onnx.path for stage in stages for net in getattr(stage, "members", [stage])]


if __name__ == "__main__":
    for written in warm(sys.argv[1] if len(sys.argv) > 1 else "experiments/best"):
        print(written)
