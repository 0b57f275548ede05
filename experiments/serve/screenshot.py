"""The README's screenshot of the labelling page: xray-serve with the shipped model, three images of
the official val split (the showcase images, never used to choose anything) dropped on it, in
headless Debian chromium driven by Playwright.

    python experiments/serve/screenshot.py [OUT.png]     (default experiments/serve/page.png)
"""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

from xray_lightning import serve
from xray_lightning.cards import model_id
from xray_lightning.data.layout import default_root
from xray_lightning.labeller import Labeller
from xray_lightning.runs import cascade_source

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("page.png")
IMAGES = ["val/normal/0.jpg", "val/infected/non-covid/1.jpg", "val/infected/covid/0.jpg"]

source = cascade_source()
labeller = Labeller.from_checkpoints(source.stage1, source.stage2, **source.thresholds)
service = serve.LabelService(labeller, source, model_id(source.stage1, source.stage2))
httpd = serve.build_server(service, "127.0.0.1", 0)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{httpd.server_address[1]}/"
flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=flags)
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.goto(url)
    page.locator("#files").set_input_files([str(default_root() / name) for name in IMAGES])
    page.locator("td.label").nth(len(IMAGES) - 1).wait_for(timeout=120_000)
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(OUT), full_page=True)
    browser.close()
httpd.shutdown()
print(OUT)
