"""Sweep configs compose, and real Hydra multiruns (subprocesses) leave the right summaries."""

from __future__ import annotations

import csv
import itertools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from xray_lightning.data.synthetic import write_synthetic_dataset
from xray_lightning.tables import SUMMARY_CSV, SUMMARY_MD, main
from xray_lightning.train import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
SWEEP_DIR = Path(CONFIG_DIR) / "sweep"
SHARED = "common"  # settings every sweep includes; not a sweep itself
SWEEPS = sorted(p.stem for p in SWEEP_DIR.glob("*.yaml") if p.stem != SHARED)
SIDE = 32
TINY_COUNTS = {
    "train": {"normal": 10, "non-covid": 10, "covid": 10},
    "test": {"normal": 4, "non-covid": 4, "covid": 4},
    "val": {"normal": 2, "non-covid": 2, "covid": 2},
}


def sweep_params(name: str) -> dict[str, list[str]]:
    """A sweep file's ``hydra.sweeper.params``, each value list parsed as Hydra parses it."""
    raw = OmegaConf.load(SWEEP_DIR / f"{name}.yaml")
    params = OmegaConf.select(raw, "hydra.sweeper.params")
    assert params, f"conf/sweep/{name}.yaml has no hydra.sweeper.params"
    parser = OverridesParser.create()
    out = {}
    for key, value in params.items():
        override = parser.parse_override(f"{key}={value}")
        out[str(key)] = (
            list(override.sweep_string_iterator())
            if override.is_sweep_override()
            else [override.get_value_element_as_str()]
        )
    return out


def test_there_are_the_issue_sweeps() -> None:
    expected = {"optimizer", "lr", "loss", "batch", "init", "dropout", "arch", "arch_choice"}
    assert expected <= set(SWEEPS)


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_config_states_seeds_budget_and_dir(name: str) -> None:
    params = sweep_params(name)
    assert len(params.get("seed", [])) >= 3, "every sweep has a seed axis of at least 3 seeds"
    assert len(params) >= 2, "a seed axis and at least one swept parameter"
    raw = OmegaConf.load(SWEEP_DIR / f"{name}.yaml")
    assert isinstance(OmegaConf.select(raw, "trainer.max_epochs"), int)
    container = OmegaConf.to_container(raw, resolve=False)
    assert f"/sweeps/{name}/" in container["hydra"]["sweep"]["dir"]
    assert SHARED in container["defaults"]
    text = (SWEEP_DIR / f"{name}.yaml").read_text()
    assert "Time on a quiet 2-core AVX2 CPU" in text and "the sweep (" in text


@pytest.mark.parametrize("name", SWEEPS)
def test_every_job_of_a_sweep_composes(name: str) -> None:
    """Each combination of swept values (first seed only) composes the real config tree."""
    params = sweep_params(name)
    params["seed"] = params["seed"][:1]
    groups = {p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir()}
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for values in itertools.product(*params.values()):
            overrides = [f"{k}={v}" for k, v in zip(params, values, strict=True)]
            cfg = compose("train", overrides=[f"sweep={name}", *overrides])
            raw = OmegaConf.load(SWEEP_DIR / f"{name}.yaml")
            assert cfg.trainer.max_epochs == raw.trainer.max_epochs
            # no sweep forces bf16: it runs at the precision auto picks for the machine
            assert cfg.trainer.precision == "auto" and cfg.channels_last == "auto"
            for key, value in zip(params, values, strict=True):
                if key in groups:
                    assert (Path(CONFIG_DIR) / key / f"{value}.yaml").is_file()
                else:
                    assert str(OmegaConf.select(cfg, key)) == str(
                        OmegaConf.create({"v": value}).v
                    ), f"{key}={value} did not reach the config"


def test_every_sweep_has_a_make_target() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = dict(re.findall(r"^(sweep-[a-z-]+):.*?sweep=(\w+)", makefile, re.M | re.S))
    assert set(targets.values()) == set(SWEEPS)
    if shutil.which("make") is None:
        pytest.skip("make is not installed: `make sweeps` not checked")
    dry = subprocess.run(
        ["make", "-n", "sweeps", "XRAY_DATA_ROOT=/nonexistent", "ARGS="],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert set(re.findall(r"xray_lightning\.train -m sweep=(\w+)", dry.stdout)) == set(SWEEPS)


def test_optuna_search_config_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="optional extra `search`")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna"], return_hydra_config=True)
    assert cfg.optimized_metric.startswith("val/")
    assert "optuna" in cfg.hydra.sweeper._target_.lower()
    assert cfg.hydra.sweeper.direction == "maximize"


# -- real multiruns on tiny synthetic data ------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "dataset"
    return write_synthetic_dataset(root, counts=TINY_COUNTS, image_size=SIDE)


def multirun(data_root: Path, sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "xray_lightning.train",
        "-m",
        *overrides,
        f"data.root={data_root}",
        f"data.image_size={SIDE}",
        f"data.expect_size={SIDE}",
        "data.cache_dir=null",
        "data.batch_size=16",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    env = dict(os.environ, XRAY_LOG_DIR=str(sweep_dir.parent / "logs"))
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sweeps(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2x2 grid (lr x loss, one seed; lr 1e12 diverges) and a second sweep of one config."""
    base = tmp_path_factory.mktemp("sweeps")
    grid, more = base / "grid", base / "more"
    multirun(tiny_root, grid, "sweep=lr", "optimizer.lr=0.01,1e12", "loss=bce,ce", "seed=0")
    multirun(tiny_root, more, "sweep=lr", "optimizer.lr=0.01", "loss=bce", "seed=1,2")
    return grid, more


def test_multirun_writes_a_summary_row_per_configuration(sweeps: tuple[Path, Path]) -> None:
    grid, _ = sweeps
    rows = read_csv(grid / SUMMARY_CSV)
    assert len(rows) == 4
    header = list(rows[0])
    assert header[:2] == ["optimizer.lr", "loss"]  # the swept parameters first
    for split in ("val", "test"):
        for name in ("loss", "acc", "precision", "recall", "f1", "auroc"):
            assert f"{split}/{name}_mean" in header and f"{split}/{name}_std" in header
    assert {"epochs_mean", "wall_time_s_mean", "status", "best", "reason"} <= set(header)
    by_config = {(float(r["optimizer.lr"]), r["loss"]): r for r in rows}
    assert set(by_config) == {(0.01, "bce"), (0.01, "ce"), (1e12, "bce"), (1e12, "ce")}
    for loss in ("bce", "ce"):
        failed, ok = by_config[(1e12, loss)], by_config[(0.01, loss)]
        assert failed["status"] == "failed" and "loss became" in failed["reason"]
        assert failed["val/acc_mean"] == "" and failed["best"] == ""
        assert ok["status"] == "ok" and 0.0 <= float(ok["val/acc_mean"]) <= 1.0
        assert float(ok["epochs_mean"]) == 1
    assert [r["best"] for r in rows].count("best") == 1
    assert "Failed and not-run jobs" in (grid / SUMMARY_MD).read_text()


def test_job_folders_are_named_after_their_overrides(sweeps: tuple[Path, Path]) -> None:
    grid, _ = sweeps
    names = sorted(p.name for p in grid.iterdir() if p.is_dir())
    assert names[0].startswith("0_") and "loss=bce" in names[0] and "optimizer.lr=" in names[0]
    assert not any("data.root" in name for name in names)


def test_tables_merges_two_sweeps(sweeps: tuple[Path, Path], tmp_path: Path) -> None:
    grid, more = sweeps
    assert main([str(grid), str(more), "--out", str(tmp_path)]) == 0
    rows = {(float(r["optimizer.lr"]), r["loss"]): r for r in read_csv(tmp_path / SUMMARY_CSV)}
    assert len(rows) == 4
    pooled = rows[(0.01, "bce")]
    assert pooled["seeds"] == "0;1;2" and pooled["n_ok"] == "3"
    assert pooled["val/acc_std"] != ""  # three seeds: a standard deviation


def test_tensorboard_hparams_tab_is_filled(sweeps: tuple[Path, Path]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    grid, _ = sweeps
    job = next(p for p in sorted(grid.iterdir()) if "optimizer.lr=0.01" in p.name)
    events = EventAccumulator(str(job / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(raw) for tag, raw in content.items()}
    experiment = next(d.experiment for d in data.values() if d.HasField("experiment"))
    start = next(d.session_start_info for d in data.values() if d.HasField("session_start_info"))
    assert "val/acc" in {m.name.tag for m in experiment.metric_infos}
    assert start.hparams["optimizer"].string_value == "SGD"
    assert start.hparams["lr"].number_value == pytest.approx(0.01)
    # the HPARAMS columns are the curves' own tags; no one-point final/* or epoch cards
    scalars = events.Tags()["scalars"]
    assert "val/acc" in scalars and "epoch" not in scalars
    assert not [tag for tag in scalars if tag.startswith("final/")]


@pytest.mark.slow
def test_optuna_search_runs_and_summarises(tiny_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="optional extra `search`")
    sweep_dir = tmp_path / "optuna"
    multirun(tiny_root, sweep_dir, "hparams_search=optuna", "hydra.sweeper.n_trials=2")
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    rows = read_csv(sweep_dir / SUMMARY_CSV)
    assert len(rows) == 2
    ok = [float(r["val/acc_mean"]) for r in rows if r["status"] == "ok"]
    assert ok and best.best_value == pytest.approx(max(ok), rel=1e-5)


@pytest.mark.slow
def test_arch_choice_rows_carry_three_class_metrics(tiny_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "arch_choice"
    multirun(tiny_root, sweep_dir, "sweep=arch_choice", "seed=0")
    rows = {r["task"]: r for r in read_csv(sweep_dir / SUMMARY_CSV)}
    assert set(rows) == {"cascade", "three_class"}
    for row in rows.values():
        assert row["status"] == "ok"
        for name in ("acc", "precision", "recall", "f1"):
            assert 0.0 <= float(row[f"test/{name}_mean"]) <= 1.0
    assert rows["cascade"]["test/loss_mean"] == ""  # a cascade has no loss of its own
    assert float(rows["cascade"]["epochs_mean"]) == 2  # one epoch per stage


def test_a_killed_sweep_lists_every_job_and_resumes_the_missing_ones(
    tiny_root: Path, tmp_path: Path
) -> None:
    """kill -9 during job 1 of 3: the summary lists job 0 ok, job 1 failed, job 2 not run; the
    same multirun with resume_sweep=true into the same dir runs only jobs 1 and 2."""
    import signal
    import time

    from xray_lightning.tables import summarise_sweeps

    sweep_dir = tmp_path / "killed"
    base = [
        sys.executable, "-m", "xray_lightning.train", "-m",
        f"data.root={tiny_root}", f"data.image_size={SIDE}", f"data.expect_size={SIDE}",
        "data.cache_dir=null", "data.batch_size=16", "trainer.enable_progress_bar=false",
        "seed=0", f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    env = dict(os.environ, XRAY_LOG_DIR=str(tmp_path / "logs"))
    # job 1 trains for 500 epochs: it is still running when the sweep is killed
    command = [*base, "trainer.max_epochs=1,500,1"]
    child = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    started = sweep_dir / "1" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert started.exists(), "job 1 never started"
    summary = summarise_sweeps([sweep_dir])
    status = {job.run_dir.name: job.status for row in summary.rows for job in row.jobs}
    assert status == {"0": "ok", "1": "failed", "2 (not run)": "not run"}
    first_job = (sweep_dir / "0" / "metrics.json").read_text()
    # resume: job 1 rerun with one epoch, so it finishes; job 0 is skipped, job 2 runs
    done = subprocess.run(
        [*base, "trainer.max_epochs=1,1,1", "resume_sweep=true"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "skipped: " in done.stdout and str(sweep_dir / "0") in done.stdout
    assert (sweep_dir / "0" / "metrics.json").read_text() == first_job  # not retrained
    summary = summarise_sweeps([sweep_dir])
    assert all(job.status == "ok" for row in summary.rows for job in row.jobs)
    assert summary.n_jobs == 3


def test_a_dead_joblib_worker_keeps_the_other_jobs_and_the_summary(
    tiny_root: Path, tmp_path: Path
) -> None:
    import json
    import signal
    import time

    sweep_dir = tmp_path / "joblib"
    command = [
        sys.executable, "-m", "xray_lightning.train", "-m", "hydra/launcher=joblib",
        f"data.root={tiny_root}", f"data.image_size={SIDE}", f"data.expect_size={SIDE}",
        "data.cache_dir=null", "data.batch_size=16", "trainer.enable_progress_bar=false",
        "seed=0", "trainer.max_epochs=2,400", f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    env = dict(os.environ, XRAY_N_JOBS="2", XRAY_LOG_DIR=str(tmp_path / "logs"))
    child = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    lock, done = sweep_dir / "1" / ".run.lock", sweep_dir / "0" / "metrics.json"
    deadline = time.monotonic() + 180
    while not (lock.exists() and done.exists()) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert lock.exists() and done.exists(), "the jobs never started"
    os.kill(json.loads(lock.read_text())["pid"], signal.SIGKILL)  # the worker running job 1
    child.wait(timeout=120)
    assert child.returncode == 1
    assert json.loads(done.read_text())["status"] == "ok"
    summary = (sweep_dir / SUMMARY_MD).read_text()
    assert "2 jobs (1 failed or not run)" in summary and "`" + str(sweep_dir / "1") in summary
