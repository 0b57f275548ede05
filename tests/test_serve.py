"""xray-serve: the JSON API (limits, errors, concurrency) and the page in a real headless
Chromium."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_dicom import ramp, write_dicom

from xray_lightning import serve
from xray_lightning.cards import model_id
from xray_lightning.labeller import Labeller
from xray_lightning.runs import cascade_source

LABELS = {"normal", "non-covid", "covid"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server() -> str:
    source = cascade_source()
    labeller = Labeller.from_checkpoints(source.stage1, source.stage2, **source.thresholds)
    service = serve.LabelService(labeller, source, model_id(source.stage1, source.stage2))
    httpd = serve.build_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def png_bytes(value: int = 90, side: int = 150) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.tile(np.linspace(0, value, side), (side, 1)).astype(np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def call(url: str, payload: object | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    body = raw if raw is not None else None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def upload(*named: tuple[str, bytes]) -> dict:
    return {"files": [{"name": n, "data": base64.b64encode(b).decode()} for n, b in named]}


def test_health_and_model_card(server: str) -> None:
    assert call(f"{server}/api/health") == (200, {"status": "ok", "version": "0.1.0"})
    status, card = call(f"{server}/api/model")
    assert status == 200 and 0.5 < card["test_metrics"]["test/acc"] < 1
    assert card["disclaimer"] == "research use, not a medical device"


def test_predict_png_dicom_and_a_broken_file(server: str, tmp_path: Path) -> None:
    dicom = write_dicom(
        tmp_path / "a.dcm", ramp("uint16", 4095), bits_stored=12, window=(2048, 4096)
    )
    files = upload(("b.png", png_bytes()), ("a.dcm", dicom.read_bytes()), ("x.jpg", b"junk"))
    status, answer = call(f"{server}/api/predict", files)
    assert status == 200
    good, also, bad = answer["results"]
    assert good["label"] in LABELS and also["label"] in LABELS and good["error"] is None
    assert "not an image" in bad["error"] and "label" not in bad
    heat = base64.b64decode(good["heatmap"].split(",", 1)[1])
    with Image.open(io.BytesIO(heat)) as image:
        assert image.size == (150, 150)
    assert good["card"].startswith("data:image/png;base64,")


def test_limits_get_clear_4xx(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert call(f"{server}/api/predict", raw=b"{not json")[0] == 400
    assert call(f"{server}/api/predict", {"files": []})[0] == 400
    many = upload(*[(f"{i}.png", png_bytes()) for i in range(serve.MAX_FILES + 1)])
    status, answer = call(f"{server}/api/predict", many)
    assert status == 413 and f"at most {serve.MAX_FILES}" in answer["error"]
    monkeypatch.setattr(serve, "MAX_FILE_BYTES", 1000)
    noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")  # ~40 kB: over a 1000-byte limit
    status, answer = call(f"{server}/api/predict", upload(("big.png", buffer.getvalue())))
    assert status == 413 and "big.png" in answer["error"]
    monkeypatch.undo()
    huge = Image.new("L", (7000, 6000))  # 42 Mpx: over the pixel limit, small as a PNG
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")
    status, answer = call(f"{server}/api/predict", upload(("huge.png", buffer.getvalue())))
    assert status == 413 and answer["error"].startswith("huge.png: 7000x6000 = 42,000,000 pixels")
    monkeypatch.setattr(serve, "MAX_SECONDS", -1.0)  # a request past its time bound
    status, answer = call(f"{server}/api/predict", upload(("late.png", png_bytes())))
    assert status == 408 and "send fewer files" in answer["error"]
    monkeypatch.undo()
    assert call(f"{server}/api/nothing")[0] == 404


def test_concurrent_requests_are_all_answered(server: str) -> None:
    answers: list[tuple[int, dict]] = []

    def ask(value: int) -> None:
        answers.append(call(f"{server}/api/predict", upload(("c.png", png_bytes(value)))))

    threads = [threading.Thread(target=ask, args=(v,)) for v in (60, 120, 200, 250)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(answers) == 4 and all(status == 200 for status, _ in answers)
    assert all(a["results"][0]["label"] in LABELS for _, a in answers)


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)"
)
def test_the_page_labels_an_upload_in_a_real_browser(server: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    image = tmp_path / "scan.png"
    image.write_bytes(png_bytes())
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        try:
            page = browser.new_page()
            page.goto(server + "/")
            page.locator("#files").set_input_files(str(image))
            page.locator("td.label").first.wait_for(timeout=120_000)
            assert page.locator("td.label").first.inner_text() in LABELS
            loaded = page.eval_on_selector(
                "img.heatmap", "img => img.complete && img.naturalWidth > 0"
            )
            assert loaded, "the heatmap image did not load"
            assert page.locator("a[download]").first.get_attribute("href").startswith("data:")
            assert "test accuracy" in page.locator("#model").inner_text()
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 10_000
