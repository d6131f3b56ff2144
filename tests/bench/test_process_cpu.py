"""bench.process_cpu: the steps it reads from a dub's log, and the CPU it attributes to them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bench.process_cpu import group_of, steps_in

DUB_LOG = """\
2026-12-03 15:30:31,375 INFO __main__: cluster ready in 44.8 s
2026-12-03 15:31:33,563 INFO pipeline.dub: analyze: 14 chunks in 62.1 s, 113.7 s inside the stage
2026-12-03 15:31:39,114 INFO pipeline.dub: speaker profiles: 5.2 s
INFO 2026-12-03 15:31:33,563 serve 7749 -- Deleting app ['asr']
2026-12-03 15:36:17,023 INFO pipeline.dub: tts es: 150 lines in 276.2 s, 546.3 s inside the stage
2026-12-03 15:36:49,821 INFO pipeline.assemble: mux es (picture re-encoded: the fit plan slows parts down): 12.0 s
2026-12-03 15:36:49,891 INFO pipeline.dub: assemble es: 32.9 s
"""


def test_steps_are_read_with_their_durations_ending_at_the_log_line():
    steps = steps_in(DUB_LOG)
    assert [(s.name, round(s.end - s.start, 1)) for s in steps] == [
        ("cluster start", 44.8), ("analyze", 62.1), ("speaker profiles", 5.2), ("tts es", 276.2),
        ("mux es", 12.0), ("assemble es", 32.9),
    ]  # fmt: skip
    analyze = steps[1]
    assert analyze.end - steps[0].end == pytest.approx(62.188, abs=1e-3)  # 15:30:31,375 -> 15:31:33,563


def test_processes_are_grouped_by_what_ray_runs_in_them():
    assert group_of("ray::ServeReplica:tts:Synthesizer.handle_request", 1, 2) == "replica:tts"
    assert group_of("ray::MapWorker(Map(LineSynthesizer)).submit", 1, 2) == "data actors"
    assert group_of("ray::_StatsActor", 1, 2) == "Ray Data's own actors"
    assert group_of(".venv/bin/python -m pipeline.job --input x.mp4", 7, 7) == "driver"
    assert group_of("/usr/sbin/nats-server -a 127.0.0.1", 1, 2) == "rest of the machine"


@pytest.mark.slow
def test_a_command_that_burns_a_core_and_runs_ffmpeg_is_measured(tmp_path):
    """The command busy-loops 3.5 s in its own process, then runs short ffmpeg encodes for 3.5 s: the first step must
    read about one core of `driver`, the second mostly the driver's subprocesses (ffmpeg, counted once reaped)."""
    script = textwrap.dedent(
        """
        import logging, subprocess, time
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log = logging.getLogger("burner")
        time.sleep(1.5)
        started = time.monotonic()
        while time.monotonic() - started < 3.5:
            pass
        log.info("burn: %.1f s", time.monotonic() - started)
        started = time.monotonic()
        while time.monotonic() - started < 3.5:  # short processes: most end between two samples
            subprocess.run(["ffmpeg", "-v", "quiet", "-f", "lavfi", "-i", "testsrc=d=1:s=320x240", "-threads", "1",
                            "-c:v", "libx264", "-f", "null", "-"], check=True)
        log.info("encode: %.1f s", time.monotonic() - started)
        time.sleep(1.5)
        """
    )
    out = tmp_path / "cpu.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "bench.process_cpu", "--out", str(out), "--", sys.executable, "-c", script],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in result.stdout.splitlines()[2:]}
    burn = [float(v) for v in rows["driver"]]
    encode = [float(v) for v in rows["subprocesses of the driver (ffmpeg)"]]
    assert 75.0 <= burn[0] <= 105.0  # one busy core while it burned
    # then ffmpeg worked, not the driver; `-threads 1` is x264's: ffmpeg's filter graph runs on another thread, so
    # the step may read a little over one core (105.3 once under a full `make test`)
    assert burn[1] < 15.0 and 40.0 <= encode[1] <= 130.0
    assert encode[0] == 0.0
