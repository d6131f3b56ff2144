"""`make demo`: make a short two-speaker sample over music, dub it into Spanish on the embedded Ray cluster,
and say where everything went."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.demo")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--to", default="es")
    args = parser.parse_args(argv)

    from octavia.cli import app
    from pipeline.samples import make_conversation

    args.out.mkdir(parents=True, exist_ok=True)
    sample = args.out / "sample.mp4"
    if not sample.exists():
        print(f"making a two-speaker sample over music: {sample}", flush=True)
        make_conversation(sample)
    print(f"dubbing it into {args.to} on an embedded Ray cluster (Serve + Data)...", flush=True)
    try:
        app(["dub", str(sample), "--to", args.to, "--out", str(args.out), "--profile", "offline"],
            standalone_mode=False)  # fmt: skip
    except SystemExit as exc:
        if exc.code:
            return int(exc.code)
    print(f"\ndone: the dubbed video is {args.out / f'sample.{args.to}.mp4'}")
    print(f"subtitles, the mix and the transcript are next to it in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
