from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.api_keys.models import ApiKey
from tests.control_plane.conftest import TestUser, assert_error


def _create(client: TestClient, user: TestUser, name: str = "ci") -> dict[str, str]:
    response = client.post("/v1/api-keys", json={"name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_key_is_shown_once_stored_hashed_and_authenticates(
    client: TestClient, make_user: Callable[..., TestUser], session: Session
) -> None:
    user = make_user()
    created = _create(client, user, "laptop")
    key = created["key"]
    prefix, secret = key.removeprefix("oct_").split("_", 1)
    assert created["prefix"] == f"oct_{prefix}" and len(prefix) == 12 and len(secret) >= 43
    assert created["name"] == "laptop" and created["last_used_at"] is None

    stored = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one()
    assert stored.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored.secret_sha256

    me = client.get("/v1/users/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["id"] == str(user.id)

    listed = client.get("/v1/api-keys", headers=user.headers).json()
    assert [item["prefix"] for item in listed["items"]] == [f"oct_{prefix}"]
    assert "key" not in listed["items"][0]
    assert listed["items"][0]["last_used_at"] is not None
    assert secret not in str(listed)


def test_revoked_key_stops_working_immediately(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    created = _create(client, user)
    key_headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/credits", headers=key_headers).status_code == 200
    assert client.delete(f"/v1/api-keys/{created['id']}", headers=user.headers).status_code == 204
    assert_error(client.get("/v1/credits", headers=key_headers), 401, "invalid_api_key")
    assert client.get("/v1/api-keys", headers=user.headers).json()["items"] == []
    assert_error(client.delete(f"/v1/api-keys/{created['id']}", headers=user.headers), 404, "api_key_not_found")


def test_a_key_can_manage_keys_of_its_own_user(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    key = _create(client, user)["key"]
    response = client.post("/v1/api-keys", json={"name": "from a key"}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201
    assert len(client.get("/v1/api-keys", headers=user.headers).json()["items"]) == 2


def test_users_cannot_see_or_delete_each_others_keys(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    alice, bob = make_user(), make_user()
    alice_key = _create(client, alice, "alice's")
    _create(client, bob, "bob's")
    bob_list = client.get("/v1/api-keys", headers=bob.headers).json()["items"]
    assert [k["name"] for k in bob_list] == ["bob's"]
    assert_error(client.delete(f"/v1/api-keys/{alice_key['id']}", headers=bob.headers), 404, "api_key_not_found")
    still = client.get("/v1/users/me", headers={"Authorization": f"Bearer {alice_key['key']}"})
    assert still.status_code == 200 and still.json()["id"] == str(alice.id)


@pytest.mark.parametrize(
    "key",
    [
        "oct_",
        "oct_nothex000000_secret",
        "oct_0123456789ab",
        "oct_0123456789ab_wrong-secret",
        "oct_" + "0" * 12 + "_" + "A" * 43,
    ],
)
def test_bad_keys_are_401(client: TestClient, make_user: Callable[..., TestUser], key: str) -> None:
    user = make_user()
    real = _create(client, user)["key"]
    if key == "oct_0123456789ab_wrong-secret":  # right prefix, wrong secret
        key = real.rsplit("_", 1)[0] + "_wrong-secret"
    assert_error(client.get("/v1/users/me", headers={"Authorization": f"Bearer {key}"}), 401, "invalid_api_key")


@pytest.mark.parametrize(
    ("body", "status"),
    [({"name": ""}, 422), ({"name": "   "}, 422), ({"name": "x" * 101}, 422), ({}, 422), ({"name": 5}, 422)],
)
def test_create_refuses_bad_input(
    client: TestClient, make_user: Callable[..., TestUser], body: dict[str, object], status: int
) -> None:
    assert_error(client.post("/v1/api-keys", json=body, headers=make_user().headers), status, "validation_error")


def test_endpoints_need_authentication(client: TestClient) -> None:
    assert_error(client.post("/v1/api-keys", json={"name": "x"}), 401, "not_authenticated")
    assert_error(client.get("/v1/api-keys"), 401, "not_authenticated")
    assert_error(client.delete("/v1/api-keys/00000000-0000-0000-0000-000000000000"), 401, "not_authenticated")


def test_delete_refuses_a_non_uuid(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    assert_error(client.delete("/v1/api-keys/not-a-uuid", headers=make_user().headers), 422, "validation_error")


def test_listing_paginates_newest_first(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    names = [f"key-{i}" for i in range(5)]
    for name in names:
        _create(client, user, name)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/api-keys", params=params, headers=user.headers).json()
        assert len(page["items"]) <= 2
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names[::-1]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "validation_error"),
        ({"limit": 101}, "validation_error"),
        ({"limit": "many"}, "validation_error"),
        ({"cursor": "!!!"}, "invalid_cursor"),
        ({"cursor": "WzFd"}, "invalid_cursor"),  # base64 of [1]: wrong arity
        ({"cursor": "WyJ4IiwieSJd"}, "invalid_cursor"),  # ["x","y"]: not a datetime / uuid
    ],
)
def test_listing_refuses_bad_pagination(
    client: TestClient, make_user: Callable[..., TestUser], params: dict[str, object], code: str
) -> None:
    assert_error(client.get("/v1/api-keys", params=params, headers=make_user().headers), 422, code)
