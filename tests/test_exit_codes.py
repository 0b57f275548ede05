"""The same exit codes in every command: 0 ok, 1 inputs failed, 2 usage/config/checkpoint, 130."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xray_lightning.errors import CheckpointError
from xray_lightning.exits import run_cli

REPO = Path(__file__).resolve().parents[1]


def command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_a_bad_config_key_exits_2_without_a_traceback(tmp_path: Path) -> None:
    done = command("xray_lightning.train", "trainer.no_such_knob=1", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    assert "no_such_knob" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_checkpoint_exits_2_in_evaluate_and_predict(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.ckpt")
    for args in (
        ("xray_lightning.evaluate", "--stage1", missing, "--stage2", missing),
        ("xray_lightning.predict", "--stage1", missing, "--stage2", missing, str(REPO)),
    ):
        done = command(*args)
        assert done.returncode == 2, (args, done.stderr[-500:])
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("raised", "code", "message"),
    [(KeyboardInterrupt, 130, "interrupted"), (CheckpointError("bad file x"), 2, "bad file x")],
)
def test_run_cli_maps_interrupts_and_user_errors(
    raised: BaseException, code: int, message: str, capsys: pytest.CaptureFixture
) -> None:
    def main() -> int:
        raise raised

    with pytest.raises(SystemExit) as caught:
        run_cli(main)
    assert caught.value.code == code
    assert message in capsys.readouterr().err
