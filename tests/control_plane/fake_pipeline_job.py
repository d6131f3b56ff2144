"""Stands in for `python -m pipeline.job` in the real-Ray tests: the same arguments, the same progress protocol
(Bearer $OCTAVIA_PROGRESS_TOKEN to --progress-url) and the same output naming, in a fraction of a second.

`--mode ok` (default) reports two stages, writes `<stem>.<lang>.mp4` (a copy of the input) and `.srt` per target
language, reports success with a measured duration and exits 0. `--mode fail` reports a bad-input failure and exits
2 (like the pipeline on an unsupported language pair). `--mode crash` exits 3 without a final report (an
infrastructure failure, as when a node dies). Standard library only: it runs in a Ray job's subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

MEASURED_DURATION = 50.0


def post(url: str, token: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["ok", "fail", "crash"], default="ok")
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--to", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--from", dest="source", default="auto")
    parser.add_argument("--profile", default="auto")
    parser.add_argument("--speakers", default="auto")
    parser.add_argument("--separation", default="auto")
    parser.add_argument("--keep-original-audio", action="store_true")
    parser.add_argument("--burn-subtitles", action="store_true")
    parser.add_argument("--progress-url", required=True)
    args = parser.parse_args()
    token = os.environ["OCTAVIA_PROGRESS_TOKEN"]
    targets = args.to.split(",")

    post(args.progress_url, token, {"stage": "analyze", "progress": 40.0, "eta_seconds": 2.0, "status": "running"})
    if args.mode == "crash":
        return 3
    if args.mode == "fail":
        error = {"code": "unsupported_language_pair", "message": f"no translation model for en->{targets[0]}"}
        post(args.progress_url, token, {"stage": "done", "status": "failed", "error": error})
        return 2
    time.sleep(0.2)
    post(args.progress_url, token, {"stage": f"synthesize:{targets[0]}", "progress": 80.0, "eta_seconds": 0.5})
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.input.stem
    for language in targets:
        shutil.copyfile(args.input, args.out / f"{stem}.{language}.mp4")
        (args.out / f"{stem}.{language}.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhola\n")
    final = {"stage": "done", "progress": 100.0, "eta_seconds": 0.0, "status": "succeeded"}
    post(args.progress_url, token, {**final, "media_duration": MEASURED_DURATION})
    return 0


if __name__ == "__main__":
    sys.exit(main())
