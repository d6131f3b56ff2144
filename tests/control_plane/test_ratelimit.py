from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from control_plane.ratelimit import TokenBucketLimiter, retry_after_seconds
from tests.control_plane.conftest import TestUser, assert_error


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == 1.0
    assert limiter.acquire("other") == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.acquire("k") == 0.5
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0
    clock.now += 3600
    assert [limiter.acquire("k") for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]  # refills up to the burst only


def test_idle_full_buckets_are_pruned() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=60, burst=1, clock=clock)
    for n in range(10_000):
        limiter.acquire(f"k{n}")
    clock.now += 2
    limiter.acquire("new")
    assert len(limiter._buckets) == 1


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    assert [retry_after_seconds(w) for w in (0.01, 1.0, 1.2, 29.5)] == [1, 1, 2, 30]


def test_requests_over_the_budget_get_429_with_retry_after(
    client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    client.app.state.rate_limiter = TokenBucketLimiter(per_minute=6, burst=2)  # type: ignore[attr-defined]
    alice, bob = make_user(), make_user()
    assert [client.get("/v1/credits", headers=alice.headers).status_code for _ in range(2)] == [200, 200]
    response = client.get("/v1/credits", headers=alice.headers)
    error = assert_error(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "10" and error["details"] == {"retry_after_seconds": 10}
    assert client.get("/v1/credits", headers=bob.headers).status_code == 200  # per user


def test_each_api_key_has_its_own_budget(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    key = client.post("/v1/api-keys", json={"name": "k"}, headers=user.headers).json()["key"]
    client.app.state.rate_limiter = TokenBucketLimiter(per_minute=6, burst=1)  # type: ignore[attr-defined]
    key_headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/credits", headers=key_headers).status_code == 200
    assert_error(client.get("/v1/credits", headers=key_headers), 429, "rate_limited")
    assert client.get("/v1/credits", headers=user.headers).status_code == 200
