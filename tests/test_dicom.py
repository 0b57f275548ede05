"""DICOM input: small files built here with pydicom (nothing downloaded), read as predict reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import (  # noqa: E402
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from xray_lightning.data.errors import BadImageError  # noqa: E402
from xray_lightning.data.images import load_image  # noqa: E402
from xray_lightning.predict import main  # noqa: E402

PATIENT = {"PatientName": "DOE^JANE", "PatientID": "ID-7731-XYZ", "PatientBirthDate": "19700101"}


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    syntax: str = ExplicitVRLittleEndian,
    preamble: bool = True,
) -> Path:
    """A one-image (or multi-frame, for a 3-d ``pixels``) DICOM with a patient's tags."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality = "DX"
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if syntax == ExplicitVRLittleEndian:
        ds.PixelData = pixels.tobytes()
    else:
        ds.PixelData = encapsulate([b"\xff\xd8 not really compressed \xff\xd9"])
    ds.save_as(path, enforce_file_format=preamble)
    return path


def ramp(dtype: str, top: int, side: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0, top, side), (side, 1)).astype(dtype)


def test_a_12_bit_window_is_spread_over_0_255(tmp_path: Path) -> None:
    path = write_dicom(
        tmp_path / "a.dcm", ramp("uint16", 4095), bits_stored=12, window=(2048, 4096)
    )
    image = load_image(path, 64, expect_size=None, expect_mode=None).numpy()
    assert image.dtype == np.uint8 and image.shape == (64, 64)
    row = image[0].astype(int)
    assert row[0] <= 1 and row[-1] >= 254 and (np.diff(row) >= 0).all()


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    pixels = ramp("uint16", 4095)
    two = write_dicom(tmp_path / "two.dcm", pixels, bits_stored=12, window=(2048, 4096))
    one = write_dicom(
        tmp_path / "one.dcm", pixels, "MONOCHROME1", bits_stored=12, window=(2048, 4096)
    )
    a = load_image(two, 64, expect_size=None, expect_mode=None).numpy().astype(int)
    b = load_image(one, 64, expect_size=None, expect_mode=None).numpy().astype(int)
    assert np.abs(a + b - 255).max() <= 1


def test_rescale_comes_before_the_window(tmp_path: Path) -> None:
    """Raw 0..1000 with intercept -1000 is -1000..0 in output units; the window [-1000, 0] only
    spreads it if the rescale was applied (raw values would all sit above the window)."""
    path = write_dicom(
        tmp_path / "hu.dcm", ramp("int16", 1000), window=(-500, 1000), rescale=(1.0, -1000.0)
    )
    row = load_image(path, 64, expect_size=None, expect_mode=None).numpy()[0].astype(int)
    assert row[0] <= 2 and row[-1] >= 253


def test_8_bit_without_window_uses_its_range_and_any_suffix(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "scan_without_suffix", ramp("uint8", 200) + 20)
    row = load_image(path, 64, expect_size=None, expect_mode=None).numpy()[0].astype(int)
    assert row[0] == 0 and row[-1] == 255


def test_multi_frame_and_undecodable_syntax_are_refused_by_name(tmp_path: Path) -> None:
    frames = write_dicom(tmp_path / "cine.dcm", np.zeros((3, 16, 16), dtype=np.uint8))
    with pytest.raises(BadImageError, match="multi-frame DICOM \\(3 frames\\)"):
        load_image(frames, 32, expect_size=None, expect_mode=None)
    packed = write_dicom(tmp_path / "ls.dcm", ramp("uint16", 4095), syntax=JPEGLSLossless)
    with pytest.raises(BadImageError, match="transfer syntax JPEG-LS Lossless"):
        load_image(packed, 32, expect_size=None, expect_mode=None)


def test_predict_labels_dicom_and_png_together_and_never_prints_patient_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a = write_dicom(tmp_path / "a.dcm", ramp("uint16", 4095), bits_stored=12, window=(2048, 4096))
    b = tmp_path / "b.png"
    Image.fromarray(ramp("uint8", 255, 150)).save(b)
    bad = write_dicom(tmp_path / "c.dcm", ramp("uint16", 4095), syntax=JPEGLSLossless)
    assert main(["--json", str(a), str(b), str(bad)]) == 1  # the shipped model; one bad file
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["label"] is not None for r in rows] == [True, True, False]
    assert "JPEG-LS Lossless" in rows[2]["error"]
    for value in PATIENT.values():
        for part in value.split("^"):
            assert part not in out.out and part not in out.err
