"""95% bootstrap intervals of a cascade's test metrics: resample the images, recompute, take the
2.5th and 97.5th percentiles. 615 test images give about +-3 points on accuracy; a difference
smaller than that between two models is not a difference this split can see."""

from __future__ import annotations

import torch

from xray_lightning.decision import COVID, NORMAL, decide

RESAMPLES = 2000
CLASS_KEYS = ("normal", "non_covid", "covid")


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), torch.nan)


def resampled_metrics(
    p: object, t1: float, t2: float, index: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The metrics of each resample (rows of ``index``), as cascade_metrics names them."""
    labels = p.labels[index]
    predicted = decide(p.p_infected, p.p_covid, t1, t2)[index]
    n = torch.tensor(float(index.shape[1]))
    cells = labels * 3 + predicted + 9 * torch.arange(index.shape[0])[:, None]
    confusion = (
        torch.bincount(cells.flatten(), minlength=9 * index.shape[0]).view(-1, 3, 3).double()
    )
    diagonal = confusion.diagonal(dim1=1, dim2=2)
    rows, columns = confusion.sum(2), confusion.sum(1)
    out = {"acc": diagonal.sum(1) / n}
    recall, precision = _ratio(diagonal, rows), _ratio(diagonal, columns)
    f1 = torch.nan_to_num(_ratio(2 * precision * recall, precision + recall), nan=0.0)
    out["f1_macro"] = f1.mean(1)
    for c, key in enumerate(CLASS_KEYS):
        out[f"recall_{key}"], out[f"precision_{key}"] = recall[:, c], precision[:, c]
    tp = confusion[:, 1:, 1:].sum((1, 2))
    fn, fp, tn = confusion[:, 1:, 0].sum(1), confusion[:, 0, 1:].sum(1), confusion[:, 0, 0]
    out["stage1/acc"] = (tp + tn) / n
    out["stage1/recall"] = _ratio(tp, tp + fn)
    out["stage1/specificity"] = _ratio(tn, tn + fp)
    out["stage1/precision"] = _ratio(tp, tp + fp)
    infected = (p.labels > NORMAL).double()[index]
    right2 = ((p.p_covid >= t2) == (p.labels == COVID)).double()[index]
    out["stage2/acc"] = _ratio((right2 * infected).sum(1), infected.sum(1))
    return out


def intervals(
    p: object, t1: float, t2: float, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """{metric: (low, high)}: the 95% percentile interval over ``resamples`` resamples."""
    generator = torch.Generator().manual_seed(seed)
    n = len(p.labels)
    index = torch.randint(0, n, (resamples, n), generator=generator)
    values = resampled_metrics(p, t1, t2, index)
    out = {}
    for key, samples in values.items():
        finite = samples[~torch.isnan(samples)]
        if len(finite):
            low, high = torch.quantile(finite, torch.tensor([0.025, 0.975], dtype=finite.dtype))
            out[key] = (float(low), float(high))
    return out
