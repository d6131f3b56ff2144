"""The pipeline's `ServeClients` against served applications: calls through handles, and `release`, which frees
the replicas of a run's own cluster once the run needs a family no more."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.errors import ModelError
from pipeline.clients import ServeClients
from serve_apps.separate.app import build_app
from tests.serve_apps.serving.conftest import TEST_DEPLOYMENT


@pytest.fixture(scope="module")
def mix() -> AudioClip:
    return AudioClip(np.linspace(-0.5, 0.5, 16_000, dtype=np.float32), 16_000)


def running_apps() -> set[str]:
    from ray import serve

    return {name for name, app in serve.status().applications.items() if app.status == "RUNNING"}


def test_owned_clients_delete_released_applications_and_keep_the_others(cluster, deploy, mix) -> None:
    from ray import serve

    deploy(build_app({"model": "none", "deployment": TEST_DEPLOYMENT}), "kept")
    serve.run(build_app({"model": "none", "deployment": TEST_DEPLOYMENT}), name="released", route_prefix="/released")
    owned = ServeClients({"separate": "released", "asr": "not-deployed"}, owned=True)
    assert np.array_equal(owned.separate(mix).vocals.samples, mix.samples)

    owned.release({"separate", "asr"})
    deadline = time.monotonic() + 30
    while "released" in serve.status().applications and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "released" not in serve.status().applications
    assert "kept" in running_apps()
    with pytest.raises(ModelError, match="released its separate models"):
        owned.separate(mix)


def test_clients_of_a_shared_cluster_release_nothing(deploy, mix) -> None:
    deploy(build_app({"model": "none", "deployment": TEST_DEPLOYMENT}), "shared")
    shared = ServeClients({"separate": "shared"})
    shared.release({"separate"})
    time.sleep(2)  # a delete, had there been one, would have begun by now
    assert "shared" in running_apps()
    assert np.array_equal(shared.separate(mix).vocals.samples, mix.samples)


class _Handle:
    def __init__(self, fails: bool) -> None:
        self.fails, self.stopped = fails, False

    def shutdown(self) -> None:
        if self.fails:
            raise RuntimeError("router loop is gone")
        self.stopped = True


def test_closing_stops_every_handle_and_a_failure_to_stop_one_is_only_logged(caplog) -> None:
    clients = ServeClients({"asr": "asr", "tts": "tts"})
    broken, working = _Handle(fails=True), _Handle(fails=False)
    clients._handles.update(asr=broken, tts=working)  # as `_handle` caches them
    with caplog.at_level("WARNING", logger="pipeline.clients"):
        clients.close()  # no exception: a run's own result or error must come out, not this
    assert working.stopped
    assert "could not stop the asr handle's router: router loop is gone" in caplog.text
    assert clients._handles == {}


class _SlowSeparator:
    """Takes a minute per call, one call at a time: what a stopped run leaves waiting."""

    def separate(self, audio: AudioClip) -> None:
        time.sleep(60)


def test_closing_cancels_the_calls_in_flight_and_refuses_new_ones(deploy, mix) -> None:
    """One call runs on the replica, the other waits in the router for it. Closing the clients ends both waits
    with an error long before the replica would answer: a thread left waiting once kept a stopped dub from
    exiting (the interpreter waits for its pool's threads, and a call whose router has stopped never returns)."""
    from ray import serve

    slow = serve.deployment(_SlowSeparator, name="Separator", max_ongoing_requests=1)
    deploy(slow.options(**TEST_DEPLOYMENT).bind(), "slow")
    clients = ServeClients({"separate": "slow"})
    errors: list[Exception] = []

    def call() -> None:
        try:
            clients.separate(mix)
        except Exception as exc:
            errors.append(exc)

    callers = [threading.Thread(target=call, daemon=True) for _ in range(2)]
    for caller in callers:
        caller.start()
    time.sleep(3)  # both calls sent: one on the replica, one queued
    clients.close()
    for caller in callers:
        caller.join(timeout=30)
    assert not any(caller.is_alive() for caller in callers)
    assert len(errors) == 2
    with pytest.raises(ModelError, match="closed its model clients"):
        clients.separate(mix)
