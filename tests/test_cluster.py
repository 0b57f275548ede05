"""Hydra launchers (joblib, submitit) and DDP: sharded sampling, presets, real runs (slow ones)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra_utils import compose_train

from xray_lightning import cluster
from xray_lightning.builders import build_datamodule
from xray_lightning.data import sampling
from xray_lightning.data.sampling import EpochBatchSampler
from xray_lightning.modules.checkpoints import load_classifier
from xray_lightning.tables import SUMMARY_CSV, SUMMARY_MD
from xray_lightning.train import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
JOBLIB = "hydra_plugins.hydra_joblib_launcher"
SUBMITIT = "hydra_plugins.hydra_submitit_launcher"
EXTRA = "optional extra 'cluster' not installed: pip install -e '.[cluster]'"
# the launcher presets extend the plugins' schemas of the same name (see xray_lightning/train.py)
pytestmark = pytest.mark.filterwarnings(r"ignore:\s*'hydra/launcher/\w+' is validated")


def items(batches: list[tuple[int, torch.Tensor]]) -> list[int]:
    return [i for _, idx in batches for i in idx.tolist()]


# -- the sampler under DDP ----------------------------------------------------------------------
@pytest.mark.parametrize("n,batch_size,world_size", [(10, 3, 2), (11, 4, 3), (7, 2, 4), (5, 8, 2)])
def test_training_shards_have_equal_step_counts_and_cover_the_epoch(
    n: int, batch_size: int, world_size: int
) -> None:
    kwargs = {"shuffle": True, "seed": 3, "augment": True}
    single = list(EpochBatchSampler(n, batch_size, **kwargs))
    shards = [
        EpochBatchSampler(n, batch_size, rank=r, world_size=world_size, **kwargs)
        for r in range(world_size)
    ]
    batches = [list(s) for s in shards]
    lengths = {len(b) for b in batches}
    assert len(lengths) == 1, f"ranks would run different step counts: {lengths}"
    assert [len(s) for s in shards] == [len(b) for b in batches]
    # every batch of the single-process epoch is on exactly one rank, same items, same aug seed
    dealt = {seed: idx.tolist() for b in batches for seed, idx in b}
    for seed, idx in single:
        assert dealt[seed] == idx.tolist()
    assert sorted(set(items([x for b in batches for x in b]))) == list(range(n))


@pytest.mark.parametrize("n,batch_size,world_size", [(10, 3, 2), (11, 4, 3), (9, 256, 4)])
def test_evaluation_shards_cover_every_item_once(n: int, batch_size: int, world_size: int) -> None:
    shards = [
        list(EpochBatchSampler(n, batch_size, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    assert sorted(items([x for s in shards for x in s])) == list(range(n))
    assert all(s for s in shards), "every rank gets some items (no empty metric sync)"
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_single_process_is_unchanged_by_an_explicit_world_of_one() -> None:
    weights = torch.rand(23) + 0.1
    for kwargs in ({"shuffle": True}, {"weights": weights}, {}):
        plain = list(EpochBatchSampler(23, 5, seed=9, augment=True, **kwargs))
        alone = list(EpochBatchSampler(23, 5, seed=9, augment=True, rank=0, world_size=1, **kwargs))
        assert [(s, i.tolist()) for s, i in plain] == [(s, i.tolist()) for s, i in alone]


def test_sampler_rejects_half_a_replica_spec() -> None:
    with pytest.raises(ValueError, match="rank and world_size"):
        EpochBatchSampler(10, 2, rank=0)
    with pytest.raises(ValueError, match="rank must be in"):
        EpochBatchSampler(10, 2, rank=2, world_size=2)


def test_datamodule_loaders_shard_by_the_process_group_rank(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DataModule's own loaders read the rank from torch.distributed (patched here)."""
    cfg = compose_train(synthetic_root, tmp_path, ["data.eval_batch_size=16"])
    datamodule = build_datamodule(cfg)
    test_labels = datamodule.split_labels("test")
    train_lengths, test_items = [], []
    for rank in range(2):
        monkeypatch.setattr(sampling, "distributed_rank_and_size", lambda r=rank: (r, 2))
        train_lengths.append(len(list(datamodule.train_dataloader())))
        for _, labels, _ in datamodule.test_dataloader():
            test_items.append(labels)
    assert train_lengths[0] == train_lengths[1]
    assert torch.equal(torch.cat(test_items), test_labels), "shards, in order, are the split"


# -- launcher presets and DDP plumbing ----------------------------------------------------------
def compose_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("name", ["ddp", "ddp_cpu"])
def test_ddp_trainers_leave_sampling_to_the_datamodule(name: str) -> None:
    cfg = compose_hydra([f"trainer={name}", "trainer.devices=3", "trainer.num_nodes=2"])
    assert cfg.trainer.strategy == "ddp"
    assert cfg.trainer.use_distributed_sampler is False
    assert (cfg.trainer.devices, cfg.trainer.num_nodes) == (3, 2)
    assert cfg.trainer.accelerator == ("cpu" if name == "ddp_cpu" else "gpu")


def test_joblib_preset_takes_n_jobs_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(JOBLIB, reason=EXTRA)
    monkeypatch.setenv("XRAY_N_JOBS", "3")
    launcher = compose_hydra(["hydra/launcher=joblib"]).hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher")
    assert launcher.n_jobs == 3
    assert cluster.launcher_threads(launcher, cpus=12) == 4


def test_slurm_preset_follows_env_and_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(SUBMITIT, reason=EXTRA)
    monkeypatch.setenv("XRAY_SLURM_PARTITION", "gpu-long")
    monkeypatch.setenv("XRAY_SLURM_TIME_MIN", "30")
    monkeypatch.setenv("XRAY_CPUS_PER_JOB", "6")
    cfg = compose_hydra(
        ["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.cpus_per_task) == ("gpu-long", 30, 6)
    assert (launcher.tasks_per_node, launcher.nodes) == (4, 2), "one SLURM task per DDP rank"
    assert cluster.launcher_threads(launcher, cpus=64) == 6
    local = compose_hydra(["hydra/launcher=submitit_local"]).hydra.launcher
    assert local._target_.endswith("LocalLauncher")


def test_launcher_threads_share_the_cores() -> None:
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert cluster.launcher_threads({"_target_": joblib, "n_jobs": 2}, cpus=16) == 8
    assert cluster.launcher_threads({"_target_": joblib, "n_jobs": -1}, cpus=16) == 1
    assert cluster.launcher_threads({"_target_": joblib, "n_jobs": 32}, cpus=16) == 1
    ray = {"_target_": "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"}
    assert cluster.launcher_threads({**ray, "ray": {"remote": {"num_cpus": 3}}}, cpus=16) == 3
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert cluster.launcher_threads({"_target_": basic}, cpus=16) is None


def test_thread_override_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv(cluster.THREADS_ENV, "1")
    try:
        assert cluster.job_threads() == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_ddp_children_rerun_this_job_in_its_output_dir(
    synthetic_root: Path, tmp_path: Path
) -> None:
    """Not sys.argv and hydra.run.dir (wrong in a multirun): the job's overrides and output dir."""
    job_dir = tmp_path / "sweep" / "3"
    cfg = compose_train(synthetic_root, job_dir, ["optimizer=sgd", "seed=7"])
    command, cwd = cluster.hydra_child_command(local_rank=1)
    assert command[:3] == [sys.executable, "-m", "xray_lightning.train"]
    assert "optimizer=sgd" in command and "seed=7" in command
    assert f'hydra.run.dir="{job_dir}"' in command
    assert str(cfg.hydra.run.dir) not in " ".join(command)
    assert "hydra.output_subdir=null" in command
    assert "-m" not in command[3:] and "--multirun" not in command
    assert Path(cwd).is_dir()


def test_ddp_launch_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning_fabric.strategies.launchers import subprocess_script

    for key in cluster.LAUNCH_ENV:
        monkeypatch.delenv(key, raising=False)
    original = subprocess_script._hydra_subprocess_cmd
    with cluster.ddp_launch():
        assert subprocess_script._hydra_subprocess_cmd is cluster.hydra_child_command
        os.environ["LOCAL_RANK"] = "0"  # what Lightning's launcher leaves behind
        os.environ["MASTER_PORT"] = "12345"
    assert subprocess_script._hydra_subprocess_cmd is original
    assert "LOCAL_RANK" not in os.environ and "MASTER_PORT" not in os.environ


# -- real runs in subprocesses (slow) -------------------------------------------------------------
def run_train(args: list[str], tmp_path: Path, timeout: int = 420) -> subprocess.CompletedProcess:
    env = {**os.environ, "XRAY_LOG_DIR": str(tmp_path / "logs"), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "xray_lightning.train", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def tiny_data(root: Path) -> list[str]:
    return [
        f"data.root={root}",
        "data.image_size=64",
        "data.expect_size=150",
        "data.cache_dir=null",
        "data.batch_size=16",
        "trainer.enable_progress_bar=false",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher,plugin,marker",
    [
        ("joblib", JOBLIB, "Joblib.Parallel(n_jobs=2"),
        ("submitit_local", SUBMITIT, "Submitit 'local' sweep output dir"),
    ],
)
def test_sweep_through_a_launcher_writes_its_summary(
    launcher: str, plugin: str, marker: str, synthetic_root: Path, tmp_path: Path
) -> None:
    pytest.importorskip(plugin, reason=EXTRA)
    sweep_dir = tmp_path / "sweep"
    done = run_train(
        [
            "-m",
            f"hydra/launcher={launcher}",
            "optimizer=adam,sgd",
            f"hydra.sweep.dir={sweep_dir}",
            "trainer.fast_dev_run=true",
            *tiny_data(synthetic_root),
        ],
        tmp_path,
    )
    assert marker in done.stdout + done.stderr, "the jobs did not go through the launcher"
    for job in ("0", "1"):
        assert json.loads((sweep_dir / job / "metrics.json").read_text())["status"] == "ok"
    with (sweep_dir / SUMMARY_CSV).open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["optimizer"] for row in rows) == ["adam", "sgd"]
    assert all(row["status"] == "ok" for row in rows)
    assert "sgd" in (sweep_dir / SUMMARY_MD).read_text()


@pytest.mark.slow
def test_ddp_cpu_run_writes_once_and_matches_a_single_process_evaluation(
    synthetic_root: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    overrides = [*tiny_data(synthetic_root), "trainer.max_epochs=2", "trainer.precision=32-true"]
    run_train(["trainer=ddp_cpu", f"hydra.run.dir={run_dir}", *overrides], tmp_path)
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("metrics.json")] == [
        Path("run/metrics.json")
    ], "metrics.json is written once, by rank zero, in the shared run dir"
    assert not list(tmp_path.rglob("*.tmp"))
    assert (run_dir / "train_rank1.log").is_file(), "rank 1 ran in the same run dir"
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["status"] == "ok"

    cfg = compose_train(synthetic_root, tmp_path / "single", overrides, fast=False)
    datamodule = build_datamodule(cfg)
    module = load_classifier(result["best_checkpoint"])
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, precision="32-true", logger=False, enable_progress_bar=False
    )
    (single,) = trainer.test(module, datamodule=datamodule, verbose=False)
    assert result["metrics"]["test/acc"] == pytest.approx(single["test/acc"], abs=1e-7)
    assert result["confusion"]["test"] == module.confusion["test"]
    n_test = sum(datamodule.summary()["test"].values())
    assert sum(map(sum, result["confusion"]["test"])) == n_test, "each test image counted once"
