"""`UnitOfWorkRoute`: the route class of every router. A sync endpoint's sessions are committed (or rolled back)
and closed in the endpoint's own thread-pool thread, as soon as it returns, instead of in `get_session`'s exit
after another hop through the event loop (see control_plane/deps.py: connections are only held by threads).
Row locks taken by the endpoint (a credit reservation) are released one round trip after its last statement.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from control_plane.deps import finish_session_after


def _finishing_sessions(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)  # FastAPI reads the signature (and its annotations' module) through __wrapped__
    def run(*args: Any, **kwargs: Any) -> Any:
        sessions = [value for value in kwargs.values() if isinstance(value, Session)]
        try:
            result = endpoint(*args, **kwargs)
        except BaseException as exc:
            for session in sessions:
                finish_session_after(session, exc)
            raise
        for session in sessions:
            finish_session_after(session, None)
        return result

    return run


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _finishing_sessions(endpoint)
        super().__init__(path, endpoint, **kwargs)
