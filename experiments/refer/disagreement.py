"""Does ensemble disagreement tell which images to refer, beyond the calibrated probability?

For each ensemble run, the refer band is fitted on val twice with ``calibration.fit`` (the
fewest val images referred while those kept reach 90% 3-class accuracy): once from the
ensemble's probabilities alone (``margin``: refer when a deciding stage's calibrated probability
is near its threshold) and once with the members' spread beside them (``margin+spread``: also
refer when the std of the members' probabilities at a deciding stage is above a cut, kept only
where it refers fewer val images). Test is only measured: share referred, 3-class accuracy and
infected recall of the images kept.

    python experiments/refer/disagreement.py --run RUN_DIR [--run ...] [--data-root DIR] --out FILE
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from xray_lightning import calibration as cal
from xray_lightning import runs
from xray_lightning.data import XrayDataModule
from xray_lightning.modules.cascade import CascadeModule

SPLITS = ("val", "test")


def one_run(run: Path, data_root: Path | None) -> dict:
    source = runs.cascade_source(run=run)
    cascade = CascadeModule.from_checkpoints(
        source.stage1_checkpoints, source.stage2_checkpoints, **source.thresholds, fold_bn=True
    ).float()
    datamodule = XrayDataModule(**runs.data_settings(source, cascade.preprocess, data_root))
    datamodule.setup("test")
    probs = {split: runs.split_predictions(cascade, datamodule, split) for split in SPLITS}
    t1, t2 = cascade.t1, cascade.t2
    bands = {
        "margin": cal.fit(replace(probs["val"], spread=None), t1, t2),
        "margin+spread": cal.fit(probs["val"], t1, t2),
    }
    result: dict = {
        "run": str(run),
        "members": len(source.stage1_checkpoints),
        "bands": {name: band.to_saved() for name, band in bands.items()},
    }
    for split, p in probs.items():
        result[split] = {"n": len(p.labels)} | {
            name: {
                key: round(value, 4)
                for key, value in cal.referral_outcome(
                    p.predicted, p.labels, band.refer(p.p_infected, p.p_covid, t1, t2, p.spread)
                ).items()
            }
            for name, band in bands.items()
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, action="append", required=True)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    results = [one_run(run, args.data_root) for run in args.run]
    payload = {"runs": results, "wall_s": round(time.perf_counter() - started, 1)}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    for r in results:
        print(r["run"], *(f"{s}: {r[s]}" for s in SPLITS), sep="\n  ")


if __name__ == "__main__":
    main()
