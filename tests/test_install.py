"""A non-editable install works from any folder: console scripts, configs and the shipped model
travel in the wheel (pyproject.toml maps conf/ and experiments/best/ into the package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_dicom import ramp, write_dicom

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (
    "xray-train",
    "xray-predict",
    "xray-evaluate",
    "xray-report",
    "xray-audit",
    "xray-serve",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The wheel built from a copy of this checkout's sources (an in-tree build would leave
    build/ and egg-info in the checkout), installed into a folder of its own (no deps: they are
    this venv's), and the environment that puts it first on the path."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("xray_lightning", "conf", "experiments"):
        shutil.copytree(REPO / name, source / name, ignore=skip)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(work / "wheel"), str(source)], check=True, timeout=300)
    wheel = next((work / "wheel").glob("xray_lightning-*.whl"))
    target = work / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target"]
    subprocess.run([*install, str(target), str(wheel)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("XRAY_MODEL", None)
    return target, env


def run(target: Path, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(target / "bin" / args[0]), *args[1:]]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_every_command_is_installed_with_version_and_examples(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    target, env = installed
    where = subprocess.run(
        [sys.executable, "-c", "import xray_lightning; print(xray_lightning.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target))  # the installed copy, not the checkout
    for command in COMMANDS:
        version = run(target, env, tmp_path, command, "--version")
        assert version.returncode == 0, version.stderr
        assert f"{command} (xray-lightning " in version.stdout
    for command in ("xray-predict", "xray-train"):
        helped = run(target, env, tmp_path, command, "--help")
        assert helped.returncode == 0 and "xample" in helped.stdout, helped.stdout[-500:]


def test_the_installed_predict_labels_dicom_and_png_with_the_shipped_model(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    target, env = installed
    a = write_dicom(tmp_path / "a.dcm", ramp("uint16", 4095), bits_stored=12, window=(2048, 4096))
    b = tmp_path / "b.png"
    Image.fromarray(np.full((150, 150), 90, dtype=np.uint8)).save(b)
    labelled = run(target, env, tmp_path, "xray-predict", "--csv", "a.dcm", "b.png")
    assert labelled.returncode == 0, labelled.stderr
    lines = labelled.stdout.splitlines()
    assert lines[0] == "path,label,p_infected,p_covid,refer,error"
    assert [line.split(",")[0] for line in lines[1:]] == [a.name, b.name]
    assert all(line.split(",")[1] in ("normal", "non-covid", "covid") for line in lines[1:])
    composed = run(target, env, tmp_path, "xray-train", "experiment=fast", "--cfg", "job")
    assert composed.returncode == 0 and "CNNBN" in composed.stdout, composed.stderr[-500:]
