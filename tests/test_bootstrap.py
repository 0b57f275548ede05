"""Bootstrap intervals: the identity resample is cascade_metrics exactly; intervals hold the
estimate and narrow with more images."""

from __future__ import annotations

import pytest
import torch
from test_calibration import synthetic_split

from xray_lightning.bootstrap import intervals, resampled_metrics
from xray_lightning.operating_point import cascade_metrics


def test_the_identity_resample_gives_the_cascade_metrics() -> None:
    split = synthetic_split(n=600, seed=3)
    identity = torch.arange(len(split.labels))[None]
    mine = resampled_metrics(split, 0.5, 0.5, identity)
    reference, _ = cascade_metrics({"test": split}, 0.5, 0.5)
    for key, value in mine.items():
        assert float(value[0]) == pytest.approx(reference[f"test/{key}"], abs=1e-6), key


def test_intervals_hold_the_estimate_and_narrow_with_more_images() -> None:
    small, large = synthetic_split(n=300, seed=4), synthetic_split(n=3000, seed=4)
    reference, _ = cascade_metrics({"test": small}, 0.5, 0.5)
    narrow, wide = (
        intervals(large, 0.5, 0.5, resamples=500),
        intervals(small, 0.5, 0.5, resamples=500),
    )
    for key, (low, high) in wide.items():
        assert low <= reference[f"test/{key}"] <= high, key
    width = lambda ci: ci["acc"][1] - ci["acc"][0]  # noqa: E731
    assert width(narrow) < width(wide) / 2
