"""Temperature scaling and the refer band: fitted on val, decisions unchanged, targets met."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from xray_lightning import calibration as cal
from xray_lightning.decision import Probabilities, decide


def synthetic_split(n: int = 4000, temperature: float = 2.5, seed: int = 0) -> Probabilities:
    """Labels drawn from sigmoid(z) but reported as sigmoid(z * T): over-confident by T."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    z1 = torch.randn(n, generator=g) * 2 + torch.where(labels > 0, 1.5, -1.5)
    z2 = torch.randn(n, generator=g) * 2 + torch.where(labels == 2, 1.0, -1.0)
    infected = torch.rand(n, generator=g) < torch.sigmoid(z1)
    covid = torch.rand(n, generator=g) < torch.sigmoid(z2)
    labels = torch.where(infected, torch.where(covid, 2, 1), 0)
    return Probabilities(torch.sigmoid(z1 * temperature), torch.sigmoid(z2 * temperature), labels)


def test_fitted_temperature_recovers_the_overconfidence_and_lowers_ece() -> None:
    split = synthetic_split()
    infected = split.labels > 0
    t = cal.fit_temperature(split.p_infected, infected)
    assert t == pytest.approx(2.5, rel=0.15)
    assert (
        cal.ece(cal.scale(split.p_infected, t), infected) < cal.ece(split.p_infected, infected) / 2
    )


def test_calibration_never_changes_a_decision_and_the_band_meets_its_target() -> None:
    val, test = synthetic_split(seed=1), synthetic_split(seed=2)
    fitted = cal.fit(val, 0.5, 0.5, target_accuracy=0.8)
    for split in (val, test):
        c1, c2 = fitted.probabilities(split.p_infected, split.p_covid)
        s1, s2 = fitted.thresholds(0.5, 0.5)
        raw = decide(split.p_infected, split.p_covid, 0.5, 0.5)
        assert torch.equal(decide(c1, c2, s1, s2), raw)
    referred = fitted.refer(val.p_infected, val.p_covid, 0.5, 0.5)
    right = decide(val.p_infected, val.p_covid, 0.5, 0.5) == val.labels
    assert right.double().mean() < 0.8  # the band has work to do
    assert 0 < referred.double().mean() <= cal.MAX_REFERRED
    assert right[~referred].double().mean() >= 0.8
    # a target out of reach refers MAX_REFERRED of val, no more
    capped = cal.fit(val, 0.5, 0.5, target_accuracy=0.999)
    share = capped.refer(val.p_infected, val.p_covid, 0.5, 0.5).double().mean()
    assert float(share) == pytest.approx(cal.MAX_REFERRED, abs=0.01)
    curve = cal.coverage_curve(val, fitted, 0.5, 0.5)
    assert curve[0][0] == 0 and curve[0][1] == pytest.approx(float(right.double().mean()))
    assert curve[-1][1] >= curve[0][1]  # the surest images are right more often


def test_an_ensembles_spread_is_used_only_where_it_refers_fewer_val_images() -> None:
    val = synthetic_split(seed=3)
    right = decide(val.p_infected, val.p_covid, 0.5, 0.5) == val.labels
    margin_only = cal.fit(val, 0.5, 0.5, target_accuracy=0.8)
    assert margin_only.refer_spread is None  # no spread: a single model
    noise = torch.rand(len(right), generator=torch.Generator().manual_seed(4)) * 0.01
    # members that disagree exactly where the cascade is wrong: the spread finds the errors
    telling = cal.fit(
        Probabilities(
            val.p_infected, val.p_covid, val.labels, torch.where(right, 0.0, 0.3) + noise
        ),
        0.5,
        0.5,
        target_accuracy=0.8,
    )
    assert telling.refer_spread is not None
    spread = torch.where(right, 0.0, 0.3) + noise
    referred = telling.refer(val.p_infected, val.p_covid, 0.5, 0.5, spread)
    before = margin_only.refer(val.p_infected, val.p_covid, 0.5, 0.5)
    assert referred.sum() < before.sum()
    assert right[~referred].double().mean() >= 0.8
    # a spread that says nothing about the errors is left out
    blind = cal.fit(Probabilities(val.p_infected, val.p_covid, val.labels, noise), 0.5, 0.5, 0.8)
    assert blind.refer_spread is None and blind.refer_margin == margin_only.refer_margin
    # saved and read back; an older saved calibration (no refer_spread) reads as None
    assert cal.Calibration.from_saved(telling.to_saved()) == telling
    old = {k: v for k, v in telling.to_saved().items() if k != "refer_spread"}
    assert cal.Calibration.from_saved(old).refer_spread is None


def test_evaluate_calibrate_saves_into_the_model_folder_and_predict_flags(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from test_plots import tiny_cascade

    from xray_lightning.evaluate import main as evaluate
    from xray_lightning.predict import main as predict

    run_dir, root = tiny_cascade(tmp_path_factory)
    model = tmp_path / "model"
    assert evaluate(["--export", str(run_dir), "--to", str(model)]) == 0
    before = json.loads((model / "thresholds.json").read_text())
    assert "calibration" not in before
    capsys.readouterr()
    assert evaluate(["--model", str(model), "--data-root", str(root), "--calibrate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    saved = json.loads((model / "thresholds.json").read_text())
    assert saved["calibration"]["fitted_on"] == "val" and saved["t1"] == before["t1"]
    assert report["calibration"]["saved_to"] == str(model / "thresholds.json")
    assert report["metrics"]["test/acc"] == pytest.approx(before["metrics"]["test/acc"])
    images = sorted((root / "test").rglob("*.jpg"))[:6]
    assert predict(["--model", str(model), "--json", *map(str, images)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(isinstance(row["refer"], bool) for row in rows)
