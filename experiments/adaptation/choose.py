"""Choose the settings of ``--adapt`` (AdaBN) on val only: synthetic site shifts, no test image.

For each model: the val images under each declared synthetic shift (``xray_lightning.shifts``),
labelled inductively and after re-estimating BatchNorm on them, for stage 1 alone and for both
stages; then adaptation on random val subsets of n images (labelling those n), to find the
smallest batch that does not do worse than the inductive model. Writes a JSON next to this file.

    python experiments/adaptation/choose.py --run RUN_DIR [--run ...] [--shipped] --out FILE
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from xray_lightning import adapt, robustness, runs
from xray_lightning.data import XrayDataModule
from xray_lightning.data.layout import find_dataset
from xray_lightning.data.transforms import prepare_batch
from xray_lightning.decision import Probabilities
from xray_lightning.labeller import Labeller
from xray_lightning.operating_point import cascade_metrics
from xray_lightning.shifts import SITE_SHIFTS

MODES = {"inductive": (), "stage1": ("stage1",), "both": ("stage1", "stage2")}
SUBSET_SIZES = (16, 32, 64, 128, 256)
SUBSETS = 5


def accuracy(labeller: Labeller, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    parts = [labeller.predict_proba(x) for x in inputs.split(256)]
    probs = Probabilities(
        torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts]), labels
    )
    metrics, _ = cascade_metrics({"s": probs}, labeller.t1, labeller.t2)
    return {k: metrics[f"s/{k}"] for k in ("acc", "stage1/acc", "stage2/acc")}


def measured(unfolded: Labeller, inputs: torch.Tensor, labels: torch.Tensor, mode: str) -> dict:
    model = copy.deepcopy(unfolded)
    adapt.adapt_cascade(model, inputs, MODES[mode], min_images=1)
    return accuracy(model, inputs, labels)


def one_model(source: runs.CascadeSource, data_root: Path) -> dict:
    unfolded = Labeller.from_checkpoints(
        source.stage1_checkpoints, source.stage2_checkpoints, **source.thresholds, fold_bn=False
    )
    settings = runs.data_settings(source, unfolded.preprocess, data_root)
    raw = XrayDataModule(**robustness.raw_datamodule_settings(settings))
    raw.setup("test")
    images, labels = robustness.raw_split(raw, "val")
    out: dict = {"shifts": {}, "subsets": {}}
    for name, shift in {"none": None, **SITE_SHIFTS}.items():
        shifted = images if shift is None else shift(images)
        inputs = prepare_batch(shifted, unfolded.preprocess)
        out["shifts"][name] = {mode: measured(unfolded, inputs, labels, mode) for mode in MODES}
    generator = torch.Generator().manual_seed(0)
    for name in ("none", "blur_1.0", "downup_0.5"):
        shift = SITE_SHIFTS.get(name)
        inputs = prepare_batch(images if shift is None else shift(images), unfolded.preprocess)
        for n in SUBSET_SIZES:
            rows = [torch.randperm(len(inputs), generator=generator)[:n] for _ in range(SUBSETS)]
            runs_ = {
                mode: [measured(unfolded, inputs[r], labels[r], mode)["acc"] for r in rows]
                for mode in ("inductive", "stage1")
            }
            out["subsets"][f"{name}/{n}"] = {m: sum(v) / len(v) for m, v in runs_.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, action="append", default=[])
    parser.add_argument("--shipped", action="store_true", help="also the shipped model")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    root, _ = find_dataset()
    sources = {str(run): runs.cascade_source(run=run) for run in args.run}
    if args.shipped:
        sources["shipped"] = runs.cascade_source()
    started = time.time()
    result = {name: one_model(source, root) for name, source in sources.items()}
    result["_meta"] = {"seconds": round(time.time() - started, 1), "subsets": SUBSETS}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} in {result['_meta']['seconds']} s")


if __name__ == "__main__":
    main()
