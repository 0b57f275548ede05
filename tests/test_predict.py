"""predict CLI: rows and exit codes on good, corrupt and non-image files; same labels as the
CascadeModule on the same images; batched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from test_plots import tiny_cascade

from xray_lightning.data import XrayDataModule
from xray_lightning.modules import CascadeModule
from xray_lightning.predict import main, predict_files
from xray_lightning.runs import cascade_checkpoints

LABELS = {"normal", "non-covid", "covid"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_cascade(tmp_path_factory)


@pytest.fixture()
def mixed_folder(trained: tuple[Path, Path], tmp_path: Path) -> Path:
    """3 good JPEGs, an RGB PNG of another size, a truncated JPEG, a text file, a hidden file."""
    _, root = trained
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["normal", "infected/non-covid", "infected/covid"]):
        shutil.copy(root / "test" / name / "0.jpg", folder / ("sub" if i else "") / f"good{i}.jpg")
    with Image.open(root / "test" / "normal" / "1.jpg") as image:
        image.convert("RGB").resize((120, 90)).save(folder / "rgb.png")
    (folder / "broken.jpg").write_bytes((root / "test" / "normal" / "2.jpg").read_bytes()[:200])
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_text("skipped")
    return folder


def rows_of(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_json_rows_and_exit_code_on_a_mixed_folder(
    trained: tuple[Path, Path], mixed_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir, _ = trained
    code = main(["--run", str(run_dir), "--json", str(mixed_folder)])
    captured = capsys.readouterr()
    assert code == 1
    rows = {Path(r["path"]).name: r for r in rows_of(captured.out)}
    good = {"good0.jpg", "good1.jpg", "good2.jpg", "rgb.png"}
    assert set(rows) == good | {"broken.jpg", "notes.txt"}
    for name in ("good0.jpg", "good1.jpg", "good2.jpg", "rgb.png"):
        row = rows[name]
        assert set(row) == {"path", "label", "p_infected", "p_covid", "refer", "error"}
        assert row["error"] is None and row["label"] in LABELS
        assert 0.0 <= row["p_infected"] <= 1.0
        # p_covid = P(covid | infected), given only for images called infected
        if row["label"] == "normal":
            assert row["p_covid"] is None
        else:
            assert 0.0 <= row["p_covid"] <= 1.0
    assert "truncated" in rows["broken.jpg"]["error"] and rows["broken.jpg"]["label"] is None
    assert "not an image" in rows["notes.txt"]["error"]
    assert "2 of 6 file(s)" in captured.err


def test_text_rows_and_exit_zero_when_all_good(
    trained: tuple[Path, Path], mixed_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir, _ = trained
    stage1, stage2, _ = cascade_checkpoints(run_dir)
    files = [mixed_folder / "good0.jpg", mixed_folder / "rgb.png"]
    code = main(["--stage1", str(stage1), "--stage2", str(stage2), *map(str, files)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].split("\t") == ["path", "label", "p_infected", "p_covid", "refer", "error"]
    assert [line.split("\t")[0] for line in lines[1:]] == [str(f) for f in files]
    assert all(line.split("\t")[1] in LABELS for line in lines[1:])
    assert all(len(line.split("\t")) == 6 for line in lines)


def test_labels_equal_the_cascade_module_on_the_same_images(trained: tuple[Path, Path]) -> None:
    run_dir, root = trained
    result = json.loads((run_dir / "metrics.json").read_text())
    stage1, stage2, thresholds = cascade_checkpoints(run_dir)
    cascade = CascadeModule.from_checkpoints(stage1, stage2, **thresholds)
    assert (cascade.t1, cascade.t2) == (result["thresholds"]["t1"], result["thresholds"]["t2"])
    datamodule = XrayDataModule(root=root, stage="three_class", image_size=64, expect_size=64)
    datamodule.setup("test")
    expected, p_expected = [], []
    for batch in datamodule.split_dataloader("test"):
        images, _ = datamodule.transform_batch(batch, train=False)
        expected.append(cascade(images))
        p_expected.append(cascade.predict_proba(images)[0])
    rows = list(predict_files(cascade, datamodule.split_paths("test"), batch_size=7))
    names = cascade.class_names
    assert [r.label for r in rows] == [names[i] for i in torch.cat(expected).tolist()]
    got = torch.tensor([r.p_infected for r in rows])
    assert torch.allclose(got, torch.cat(p_expected), atol=1e-5)


def test_prediction_is_batched(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, root = trained
    stage1, stage2, _ = cascade_checkpoints(run_dir)
    cascade = CascadeModule.from_checkpoints(stage1, stage2)
    calls: list[int] = []
    original = cascade.label_proba

    def counting(images: torch.Tensor):
        calls.append(len(images))
        return original(images)

    cascade.label_proba = counting  # type: ignore[method-assign]
    files = sorted((root / "train").rglob("*.jpg"))[:50]
    rows = list(predict_files(cascade, files, batch_size=16))
    assert len(rows) == 50 and all(r.error is None for r in rows)
    assert calls == [16, 16, 16, 2]


def test_bad_checkpoints_and_arguments_exit_2(
    trained: tuple[Path, Path], mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir, _ = trained
    stage1, stage2, _ = cascade_checkpoints(run_dir)
    image = str(mixed_folder / "good0.jpg")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["--stage1", str(junk), "--stage2", str(stage2), image]) == 2
    assert "not a readable" in capsys.readouterr().err
    assert main(["--stage1", str(stage2), "--stage2", str(stage2), image]) == 2
    assert "normal_vs_infected checkpoint was expected" in capsys.readouterr().err
    assert main(["--run", str(tmp_path), image]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert main(["--run", str(run_dir / "stage1"), image]) == 2
    assert "needs a cascade run dir" in capsys.readouterr().err
    for argv in (
        ["--stage1", str(stage1), image],
        ["--run", str(run_dir), str(tmp_path / "missing.jpg")],
        ["--run", str(run_dir)],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_error_rows_have_the_header_columns_in_table_and_csv(
    trained: tuple[Path, Path], mixed_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    """A spreadsheet must not shift: every row, error rows too, has the header's six columns."""
    import csv
    import io

    run_dir, _ = trained
    folder = [str(mixed_folder)]
    assert main(["--run", str(run_dir), *folder]) == 1
    table = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert {len(row) for row in table} == {6}
    assert any(row[1] == "error" and row[5] != "-" for row in table[1:])
    assert main(["--run", str(run_dir), "--csv", *folder]) == 1
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["path", "label", "p_infected", "p_covid", "refer", "error"]
    assert {len(row) for row in rows} == {6}
    assert any(row[1] == "error" and row[5] and not row[2] for row in rows[1:])


def test_cards_and_heatmaps_one_png_per_good_image(
    trained: tuple[Path, Path], mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir, _ = trained
    cards, heatmaps = tmp_path / "cards", tmp_path / "heat"
    args = ["--run", str(run_dir), "--json", "--cards", str(cards), "--heatmaps", str(heatmaps)]
    assert main([*args, str(mixed_folder)]) == 1  # the folder holds unreadable files too
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    good = [r for r in rows if r["error"] is None]
    assert len(good) == 4 and len(list(cards.glob("*.png"))) == 4
    for png in heatmaps.glob("*.png"):
        with Image.open(png) as image:
            assert image.mode == "RGB" and image.size == (64, 64)  # the model's input size
    assert len(list(heatmaps.glob("*.png"))) == 4
    with Image.open(next(cards.glob("*.png"))) as card:
        assert card.size[0] >= 600 and card.size[1] >= 400


def test_repeated_stage_flags_make_an_ensemble(
    trained: tuple[Path, Path], mixed_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    """--stage1 A --stage1 A --stage2 B --stage2 B averages two identical members: same rows."""
    run_dir, _ = trained
    stage1, stage2, _ = cascade_checkpoints(run_dir)
    files = [str(mixed_folder / "good0.jpg"), str(mixed_folder / "rgb.png")]
    assert main(["--json", "--stage1", str(stage1), "--stage2", str(stage2), *files]) == 0
    single = capsys.readouterr().out
    twice = ["--stage1", str(stage1), "--stage1", str(stage1)]
    twice += ["--stage2", str(stage2), "--stage2", str(stage2)]
    assert main(["--json", *twice, *files]) == 0
    assert capsys.readouterr().out == single


def test_a_progress_bar_on_stderr_only_when_someone_watches(
    trained: tuple[Path, Path],
    mixed_folder: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from xray_lightning import progress

    run_dir, _ = trained
    args = ["--run", str(run_dir), "--json", str(mixed_folder)]
    main(args)  # stderr is not a terminal here: no bar
    quiet = capsys.readouterr()
    assert "labelling" not in quiet.err
    monkeypatch.setattr(progress, "_is_terminal", lambda stream: stream is sys.stderr)
    main(args)  # rows to a file, stderr a terminal: the bar, with the count of images
    watched = capsys.readouterr()
    assert "labelling" in watched.err and "/6" in watched.err and "img" in watched.err
    assert watched.out == quiet.out  # the rows are the same, and no bar among them
    monkeypatch.setattr(progress, "_is_terminal", lambda stream: True)
    main(args)  # rows on the terminal: they are the progress, no bar
    assert "labelling" not in capsys.readouterr().err


def test_watched_reads_both_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from xray_lightning import progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress.watched() and progress.watched(rows_on_stdout=True)
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert progress.watched() and not progress.watched(rows_on_stdout=True)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress.watched()
    closed = io.StringIO()
    closed.close()  # isatty() of a closed stream raises ValueError: not a terminal
    monkeypatch.setattr(sys, "stderr", closed)
    assert not progress.watched()
