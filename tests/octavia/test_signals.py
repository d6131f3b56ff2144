import signal

import pytest

from octavia.signals import exit_on_sigterm, sigterm_handler_kept


@pytest.fixture(autouse=True)
def _restore_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def _replacing(signum: int, _frame: object) -> None:  # what `ray.init` installs in a driver
    raise SystemExit(signum)


def test_the_handler_set_before_is_put_back_over_a_replacing_one():
    exit_on_sigterm()
    ours = signal.getsignal(signal.SIGTERM)
    with sigterm_handler_kept():
        signal.signal(signal.SIGTERM, _replacing)
    assert signal.getsignal(signal.SIGTERM) is ours
    with pytest.raises(SystemExit) as stopped:
        ours(signal.SIGTERM, None)
    assert stopped.value.code == 128 + signal.SIGTERM


def test_without_a_python_handler_before_the_replacing_one_stays():
    """The default action kills the process without unwinding: a handler that exits is better than that."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with sigterm_handler_kept():
        signal.signal(signal.SIGTERM, _replacing)
    assert signal.getsignal(signal.SIGTERM) is _replacing
