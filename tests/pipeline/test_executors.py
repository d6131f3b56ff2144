import threading
import time
from typing import ClassVar

import pytest

from pipeline.executors import LocalExecutor, ascii_label, longest_first


def test_longest_first_orders_by_cost_and_keeps_ties_in_order():
    lines = ["a b c", "hello there", "xyz", "hi", "world"]
    assert longest_first(lines, len) == ["hello there", "a b c", "world", "xyz", "hi"]


class _Double:
    def __init__(self, context: str) -> None:
        self.factor = int(context)

    def __call__(self, row):
        return {"n": row["n"] * self.factor}


def test_local_executor_maps_every_row_in_order():
    seen: list[int] = []
    LocalExecutor().map(
        _Double, "2", [{"n": n} for n in (3, 1, 2)], name="double", on_row=lambda r: seen.append(r["n"])
    )
    assert seen == [6, 2, 4]


def test_ascii_label_keeps_letters_drops_accents_and_marks_the_rest():
    assert ascii_label("dub entrevista señal.mp4 -> es") == "dub entrevista senal.mp4 -> es"
    assert ascii_label("dub Ünï 5.1.MKV -> pt") == "dub Uni 5.1.MKV -> pt"
    assert ascii_label("dub 東京.mp4 -> es") == "dub __.mp4 -> es"
    assert ascii_label("plain name") == "plain name"


class _Meet:
    """Each row waits for a second row to arrive: rows taken one at a time never meet (the barrier times out)."""

    def __init__(self, context: str, clients: object | None = None) -> None:
        self.barrier = threading.Barrier(2, timeout=float(context))
        self.clients = clients

    def __call__(self, row):
        self.barrier.wait()
        return {"n": row["n"], "thread": threading.get_ident(), "clients": self.clients}


def test_local_executor_with_workers_runs_that_many_rows_at_once_with_the_clients_it_was_given():
    clients = object()
    rows: list[dict] = []
    LocalExecutor(workers=2, clients=clients).map(
        _Meet, "10", [{"n": n} for n in range(6)], name="meet", on_row=rows.append
    )
    assert sorted(r["n"] for r in rows) == list(range(6))
    assert len({r["thread"] for r in rows}) == 2
    assert all(r["clients"] is clients for r in rows)


def test_one_worker_takes_one_row_at_a_time():
    with pytest.raises(threading.BrokenBarrierError):
        LocalExecutor(workers=1).map(_Meet, "0.5", [{"n": 0}, {"n": 1}], name="meet", on_row=lambda r: None)


class _FailOnSecond:
    started: ClassVar[list[int]] = []

    def __init__(self, context: str) -> None:
        pass

    def __call__(self, row):
        _FailOnSecond.started.append(row["n"])
        if row["n"] == 1:
            raise RuntimeError("the model failed")
        time.sleep(0.2)
        return row


def test_a_failed_row_fails_the_map_and_the_rows_still_queued_never_start():
    _FailOnSecond.started = []
    with pytest.raises(RuntimeError, match="the model failed"):
        LocalExecutor(workers=2).map(
            _FailOnSecond, "", [{"n": n} for n in range(20)], name="fail", on_row=lambda r: None
        )
    time.sleep(0.5)  # what was running when the failure came ends; nothing queued starts
    assert len(_FailOnSecond.started) <= 4
