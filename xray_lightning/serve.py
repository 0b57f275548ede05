"""``xray-serve``: a local web page (and JSON API) that labels dropped images with the cascade.

    xray-serve [--host 127.0.0.1] [--port 8765] [--model DIR | --run RUN_DIR | --stage1/--stage2]

Routes: ``GET /`` the page · ``GET /api/health`` · ``GET /api/model`` (the model card's numbers)
· ``POST /api/predict`` with ``{"files": [{"name": "a.png", "data": "<base64>"}, ...]}``, answered
with one result per file (label, calibrated probabilities, refer, error, heatmap and card as PNG
data URLs).

Standard library only (``http.server``): a request's time is the networks' (~0.1 s an image on 2
cores), so a faster HTTP stack would change nothing measurable, and nothing new is installed.
The model is loaded once; one lock lets one request at a time use the cores (concurrent requests
wait their turn, safely). Uploads stay in memory; nothing is written to disk. Limits, each a
clear 4xx: bytes per file, pixels per image, files per request, and a time bound per request.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from xray_lightning.calibration import Calibration
from xray_lightning.cli import command_parser
from xray_lightning.data.errors import BadImageError, TooManyPixelsError
from xray_lightning.data.images import decode_image
from xray_lightning.data.transforms import prepare_batch
from xray_lightning.errors import XrayLightningError
from xray_lightning.exits import run_cli
from xray_lightning.labeller import Labeller
from xray_lightning.paths import PACKAGE, package_version
from xray_lightning.runs import CascadeSource, cascade_source, read_thresholds

MAX_FILE_BYTES = 32 * 2**20  # per uploaded file, decoded
MAX_FILES = 32  # per request
MAX_SECONDS = 120.0  # per request: past it the request is answered 408
PAGE = PACKAGE / "serve_page.html"


class RequestError(Exception):
    """A request the API refuses: its HTTP status and a one-line reason."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class LabelService:
    """The loaded cascade and what the API answers with; thread-safe."""

    def __init__(self, labeller: Labeller, source: CascadeSource, model: str) -> None:
        self.labeller, self.source, self.model = labeller, source, model
        self.calibration = Calibration.from_saved(source.calibration)
        self.lock = threading.Lock()

    def model_card(self) -> dict[str, Any]:
        saved = read_thresholds(self.source.stage1.parent) if self.source.run_dir is None else {}
        metrics = saved.get("metrics") or {}
        headline = ("test/acc", "test/stage1/acc", "test/stage1/recall", "test/stage2/acc")
        return {
            "model": self.model,
            "version": package_version(),
            "thresholds": {"t1": self.labeller.t1, "t2": self.labeller.t2},
            "test_metrics": {k: metrics[k] for k in headline if k in metrics},
            "input_size": int(self.labeller.preprocess["image_size"]),
            "calibration": self.calibration.to_saved(),
            "disclaimer": "research use, not a medical device",
        }

    def predict(self, files: list[dict[str, Any]], deadline: float) -> list[dict[str, Any]]:
        from xray_lightning.cards import image_cards

        side = int(self.labeller.preprocess["image_size"])
        results: list[dict[str, Any]] = [{"name": f["name"], "error": None} for f in files]
        decoded: dict[int, torch.Tensor] = {}
        for i, item in enumerate(files):
            try:
                decoded[i] = decode_image(item["bytes"], item["name"], side)
            except TooManyPixelsError as error:
                raise RequestError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{item['name']}: {error.reason}"
                ) from None
            except BadImageError as error:
                results[i]["error"] = error.reason
        good = list(decoded)
        with self.lock:
            for start in range(0, len(good), 16):
                rows = good[start : start + 16]
                if time.monotonic() > deadline:
                    raise RequestError(
                        HTTPStatus.REQUEST_TIMEOUT,
                        f"the request took over {MAX_SECONDS:g} s after {start} of {len(good)} "
                        "images: send fewer files at a time",
                    )
                raw = torch.stack([decoded[i] for i in rows])
                with torch.inference_mode():
                    inputs = prepare_batch(raw, self.labeller.preprocess)
                    p_inf, p_cov, spread = self.labeller.label_proba(inputs)
                    labels = self.labeller.decide(p_inf, p_cov)
                names = [files[i]["name"] for i in rows]
                t1, t2 = self.labeller.t1, self.labeller.t2
                shown_inf, shown_cov, refer = self.calibration.shown(p_inf, p_cov, t1, t2, spread)
                pngs = image_cards(
                    self.labeller,
                    names,
                    raw,
                    inputs,
                    p_inf,
                    p_cov,
                    labels,
                    self.model,
                    shown=(shown_inf, shown_cov),
                    refer=refer,
                )
                for k, i in enumerate(rows):
                    covid = None if torch.isnan(shown_cov[k]) else round(float(shown_cov[k]), 6)
                    results[i].update(
                        label=self.labeller.class_names[int(labels[k])],
                        p_infected=round(float(shown_inf[k]), 6),
                        p_covid=covid,
                        refer=bool(refer[k]),
                        heatmap=data_url(pngs[k]["heatmap"]),
                        card=data_url(pngs[k]["card"]),
                    )
        return results


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def parse_upload(body: bytes) -> list[dict[str, Any]]:
    """``{"files": [{"name", "data"}]}`` -> [{"name", "bytes"}], or RequestError naming why."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RequestError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
    files = payload.get("files") if isinstance(payload, dict) else None
    if not isinstance(files, list) or not files:
        raise RequestError(HTTPStatus.BAD_REQUEST, 'expected {"files": [{"name", "data"}, ...]}')
    if len(files) > MAX_FILES:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(files)} files in one request; at most {MAX_FILES}",
        )
    out = []
    for index, item in enumerate(files):
        name = item.get("name") if isinstance(item, dict) else None
        data = item.get("data") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(data, str):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"files[{index}] needs a name and data")
        if len(data) > MAX_FILE_BYTES * 4 // 3 + 4:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{name}: more than {MAX_FILE_BYTES // 2**20} MiB; at most that per file",
            )
        try:
            raw = base64.b64decode(data.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{name}: data is not base64") from None
        out.append({"name": Path(name).name or f"file{index}", "bytes": raw})
    return out


def make_handler(service: LabelService) -> type[BaseHTTPRequestHandler]:
    page = PAGE.read_bytes()
    max_body = MAX_FILES * (MAX_FILE_BYTES * 4 // 3 + 1024)

    class Handler(BaseHTTPRequestHandler):
        server_version = f"xray-serve/{package_version()}"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

        def send(self, status: HTTPStatus, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status: HTTPStatus, payload: Any) -> None:
            self.send(status, json.dumps(payload).encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path in ("/", "/index.html"):
                self.send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path == "/api/health":
                self.send_json(HTTPStatus.OK, {"status": "ok", "version": package_version()})
            elif self.path == "/api/model":
                self.send_json(HTTPStatus.OK, service.model_card())
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            started = time.monotonic()
            try:
                if self.path != "/api/predict":
                    raise RequestError(HTTPStatus.NOT_FOUND, f"no such endpoint: {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0:
                    raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is needed")
                if length > max_body:
                    raise RequestError(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"the request is {length:,} bytes; at most {max_body:,}",
                    )
                files = parse_upload(self.rfile.read(length))
                results = service.predict(files, started + MAX_SECONDS)
            except RequestError as error:
                self.send_json(error.status, {"error": error.reason})
                return
            took = round(time.monotonic() - started, 3)
            self.send_json(
                HTTPStatus.OK, {"model": service.model, "seconds": took, "results": results}
            )

    return Handler


def build_server(service: LabelService, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(service))
    server.daemon_threads = True
    return server


def load_service(args: argparse.Namespace) -> LabelService:
    from xray_lightning.cards import model_id

    source = cascade_source(args.run, args.stage1, args.stage2, None, None, args.model)
    labeller = Labeller.from_checkpoints(
        source.stage1_checkpoints, source.stage2_checkpoints, **source.thresholds, runtime="auto"
    )
    return LabelService(
        labeller, source, model_id(source.stage1_checkpoints, source.stage2_checkpoints)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
        "xray_lightning.serve",
        "A local web page that labels dropped chest X-rays (PNG, JPEG, DICOM) with the cascade.",
        [
            "{prog}                       (http://127.0.0.1:8765, the shipped model)",
            "{prog} --port 9000 --model my_model/",
        ],
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: loopback only)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="a model folder (default: the shipped one)")
    source.add_argument("--run", type=Path, help="a cascade run dir")
    source.add_argument("--stage1", type=Path, action="append", help="stage-1 checkpoint(s)")
    parser.add_argument("--stage2", type=Path, action="append", help="stage-2 checkpoint(s)")
    args = parser.parse_args(argv)
    if (args.stage1 is None) != (args.stage2 is None):
        parser.error("--stage1 and --stage2 go together")
    try:
        service = load_service(args)
        server = build_server(service, args.host, args.port)
    except (XrayLightningError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"error: cannot listen on {args.host}:{args.port} ({error.strerror})", file=sys.stderr
        )
        return 2
    host, port = server.server_address[:2]
    print(f"xray-serve: http://{host}:{port}/ (model {service.model}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def entry_point() -> None:
    """The installed ``xray-serve`` command."""
    run_cli(main)


if __name__ == "__main__":
    entry_point()
