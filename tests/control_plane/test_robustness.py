"""No request shape makes the API answer 5xx, and every 4xx has the error shape (a small schemathesis)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.control_plane.conftest import TestUser, assert_error

BODIES: list[Any] = [None, {}, [], "text", 0, {"email": None, "password": 1}, {"x": "y" * 10_000}]


def test_garbage_never_causes_a_server_error(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    admin = make_user(is_admin=True)
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, operations in spec["paths"].items():
        for method in operations:
            for path_value in ("garbage", str(uuid.uuid4())) if "{" in path else ("",):
                url = path.replace("{api_key_id}", path_value)
                for body in BODIES:
                    for headers in (admin.headers, {}):
                        response = client.request(
                            method.upper(), url, json=body, params={"limit": "x", "cursor": "%%"}, headers=headers
                        )
                        assert response.status_code < 500, (method, url, body, response.text)
                        if response.status_code >= 400:
                            assert_error(response, response.status_code)
                        checked += 1
    assert checked > 200
