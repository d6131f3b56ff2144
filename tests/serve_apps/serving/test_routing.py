"""The pipeline's per-item deployments, as `with_workers` sizes them for a run's own cluster: one replica that runs
as many calls at once as the run has callers, so no item waits while an engine worker idles.

Two Ray actors (each with its own handle, as the pipeline's Data actors have) send lines one after the other to
the real TTS shim, whose engine (a fake that blocks its thread 50 ms per character) logs when each call ran, on
which thread and for which text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.serve_apps.serving.conftest import ROOT, TEST_DEPLOYMENT

CONFIG = ROOT / "serve_apps" / "configs" / "serve-cpu.yaml"


def sized_tts_args(workers: int, log: Path) -> dict:  # type: ignore[type-arg]
    """The tts application's args as a run with `workers` callers deploys it, serving the recording engine. Batches
    wait up to 0.5 s to fill, so that any two lines sent together would share one if batches could hold two."""
    from pipeline.serving import with_workers

    config = with_workers(yaml.safe_load(CONFIG.read_text()), workers)
    app = next(a for a in config["applications"] if a["name"] == "tts")
    [deployment] = app["deployments"]
    options = {key: deployment[key] for key in ("max_ongoing_requests", "autoscaling_config", "ray_actor_options")}
    return {
        **app["args"],
        "engine": "tests.serve_apps.serving.fakes:RecordingTtsEngine",
        "engine_kwargs": {"log": str(log)},
        "batch_wait_timeout_s": 0.5,
        "deployment": {**options, "graceful_shutdown_timeout_s": TEST_DEPLOYMENT["graceful_shutdown_timeout_s"]},
    }


def calls_in(log: Path) -> list[tuple[float, float, str, str]]:
    """(start, end, thread, text) of every engine call, in the order they ended."""
    rows = (line.split(maxsplit=3) for line in log.read_text().splitlines())
    return [(float(start), float(end), thread, text) for start, end, thread, text in rows]


def most_at_once(calls: list[tuple[float, float, str, str]]) -> int:
    edges = sorted([(start, 1) for start, *_ in calls] + [(end, -1) for _, end, *_ in calls])
    active = most = 0
    for _, step in edges:
        active += step
        most = max(most, active)
    return most


@pytest.fixture(scope="module")
def caller_class():  # type: ignore[no-untyped-def]
    import ray

    @ray.remote(num_cpus=0.05)
    class Caller:
        def __init__(self, app: str) -> None:
            from ray import serve

            self.handle = serve.get_deployment_handle("Synthesizer", app_name=app)

        def run(self, lines: list[str]) -> list[float]:
            return [self.handle.synthesize.remote(text, "en", "tone").result().duration for text in lines]

    return Caller


@pytest.mark.parametrize("workers", [1, 2])
def test_one_replica_runs_every_callers_line_at_once(deploy, caller_class, tmp_path: Path, workers: int) -> None:
    import ray

    from serve_apps.tts.app import build_app

    log = tmp_path / "calls.log"
    deploy(build_app(sized_tts_args(workers, log)), f"routing{workers}")
    callers = [caller_class.remote(f"routing{workers}") for _ in range(2)]
    # A caller's first call waits for its actor to start and its router to learn the replica (seconds on a busy
    # host): one call each first, so the lines below are sent together and not after the other caller's are done.
    ray.get([c.run.remote(["warm"]) for c in callers])
    log.unlink()
    lines = [f"line {i}" for i in range(4)]  # 0.3 s each
    durations = [d for done in ray.get([c.run.remote(lines) for c in callers]) for d in done]

    assert durations == [pytest.approx(0.1)] * 8
    calls = calls_in(log)
    assert len(calls) == 8
    assert len({thread for _, _, thread, _ in calls}) == workers
    # Two callers each keep one line in flight: with two workers both run at once, with one never.
    assert most_at_once(calls) == workers


def test_a_short_line_is_not_held_back_by_a_long_one(deploy, caller_class, tmp_path: Path) -> None:
    import ray

    from serve_apps.tts.app import build_app

    log = tmp_path / "calls.log"
    deploy(build_app(sized_tts_args(2, log)), "coupling")
    long_line, short_lines = " ".join(["a long line"] * 3), ["one", "two", "six"]  # 1.75 s, then 0.15 s each
    long_caller, short_caller = (caller_class.remote("coupling") for _ in range(2))
    ray.get([long_caller.run.remote(["warm"]), short_caller.run.remote(["warm"])])
    ray.get([long_caller.run.remote([long_line]), short_caller.run.remote(short_lines)])

    ended = {text: end for _, end, _, text in calls_in(log)}
    # Sent together, the first short line shares no batch with the long one: the short caller's three lines are
    # all spoken while the long line still is (in one batch they would have waited for it, a worker idle).
    assert max(ended[text] for text in short_lines) < ended[long_line]
