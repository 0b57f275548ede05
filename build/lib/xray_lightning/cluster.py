"""Glue between Hydra launchers and Lightning DDP: threads per job, DDP child processes, rank zero.

- ``job_threads``: jobs that a launcher runs side by side (joblib ``n_jobs``, submitit
  ``cpus_per_task``, ray ``num_cpus``) each get their share of the cores as torch threads.
- ``ddp_launch``: Lightning starts DDP ranks 1..N-1 by re-running the script; its Hydra variant
  (``_hydra_subprocess_cmd`` in lightning_fabric/strategies/launchers/subprocess_script.py) re-runs
  ``sys.argv`` with ``hydra.run.dir=HydraConfig.get().run.dir``. Inside a multirun that is wrong
  twice: ``sys.argv`` is the whole sweep (``-m optimizer=adam,sgd``; under submitit or joblib it
  is not even this program) and ``run.dir`` is not the job's folder (``sweep.dir/subdir``). While a
  run trains, the children are started as ``python -m xray_lightning.train <this job's
  overrides> hydra.run.dir=<this job's output dir>`` instead, so every rank shares one run dir,
  single run or sweep job alike. When the run ends, the environment Lightning set for the
  launch (LOCAL_RANK, MASTER_PORT, ...) is restored, so the next job of a sweep run in the same
  process (basic or joblib launcher) launches its own ranks.
- ``is_global_zero``: who writes metrics.json.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_only

ENTRY_MODULE = "xray_lightning.train"
THREADS_ENV = "XRAY_THREADS_PER_JOB"  # overrides the launcher-derived thread count
# What Lightning's subprocess launcher puts in os.environ of the launching process
LAUNCH_ENV = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
)


def available_cpus() -> int:
    """Cores this process may run on (affinity-aware, so a SLURM allocation counts right)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_global_zero() -> bool:
    """True on the process that writes results: global rank 0 (or no DDP at all)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return getattr(rank_zero_only, "rank", 0) == 0


def launcher_threads(launcher: Mapping[str, Any], cpus: int) -> int | None:
    """Torch threads per job for ``hydra.launcher`` so parallel jobs do not oversubscribe.

    joblib: ``cpus // n_jobs`` (``n_jobs`` -1 means all cores, as in joblib); submitit:
    ``cpus_per_task``; ray: ``ray.remote.num_cpus``. None: leave torch's default.
    """
    target = str(launcher.get("_target_") or "")
    if target.endswith("JoblibLauncher"):
        n_jobs = int(launcher.get("n_jobs") or 1)
        if n_jobs < 0:
            n_jobs = max(1, cpus + 1 + n_jobs)
        return max(1, cpus // n_jobs)
    if "hydra_submitit_launcher" in target:
        per_task = launcher.get("cpus_per_task")
        return int(per_task) if per_task else None
    if "hydra_ray_launcher" in target:
        remote = (launcher.get("ray") or {}).get("remote") or {}
        per_job = remote.get("num_cpus")
        return max(1, int(per_job)) if per_job else None
    return None


def job_threads() -> int | None:
    """Set torch's thread count for this job: $XRAY_THREADS_PER_JOB, else from the launcher."""
    from hydra.core.hydra_config import HydraConfig

    threads: int | None = None
    if os.environ.get(THREADS_ENV):
        threads = int(os.environ[THREADS_ENV])
    elif HydraConfig.initialized():
        launcher = HydraConfig.get().get("launcher") or {}
        threads = launcher_threads(launcher, available_cpus())
    if threads:
        torch.set_num_threads(threads)
    return threads


def hydra_child_command(local_rank: int) -> tuple[list[str], str]:
    """The command (and cwd) that starts DDP rank ``local_rank`` of the current Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    run_dir = str(hydra_cfg.runtime.output_dir).replace("\\", "\\\\").replace('"', '\\"')
    command = [
        sys.executable,
        "-m",
        ENTRY_MODULE,
        *hydra_cfg.overrides.task,
        f'hydra.run.dir="{run_dir}"',
        f"hydra.job.name={hydra_cfg.job.name}_rank{local_rank}",
        "hydra.output_subdir=null",  # .hydra/ stays rank zero's
    ]
    return command, str(hydra_cfg.runtime.cwd)


def leave_process_group() -> None:
    """End DDP for this process (training is over): later loaders no longer shard by rank."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def ddp_launch() -> Iterator[None]:
    """Around one run: DDP children re-run this job (see the module doc); clean up after it."""
    from lightning_fabric.strategies.launchers import subprocess_script as fabric_launcher
    from pytorch_lightning.strategies.launchers import subprocess_script as pl_launcher

    launched_here = "LOCAL_RANK" not in os.environ  # a child already has it
    saved_env = {key: os.environ.get(key) for key in LAUNCH_ENV}
    saved_threads = torch.get_num_threads()
    modules = (fabric_launcher, pl_launcher)  # the Trainer's launcher imported its own reference
    originals = [module._hydra_subprocess_cmd for module in modules]
    for module in modules:
        module._hydra_subprocess_cmd = hydra_child_command
    try:
        yield
    finally:
        for module, original in zip(modules, originals, strict=True):
            module._hydra_subprocess_cmd = original
        if launched_here:
            leave_process_group()
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            torch.set_num_threads(saved_threads)
