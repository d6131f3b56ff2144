from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from control_plane.config import Settings
from tests.control_plane.conftest import assert_error, make_settings


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_is_404_with_the_error_shape(client: TestClient) -> None:
    error = assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert error["details"] == {"path": "/v1/nothing-here"}


def test_wrong_method_is_405_with_the_error_shape(client: TestClient) -> None:
    response = client.put("/v1/credits")
    error = assert_error(response, 405, "method_not_allowed")
    assert error["details"]["method"] == "PUT"
    assert "GET" in response.headers["allow"]


def test_validation_errors_use_the_error_shape_and_never_echo_input(client: TestClient) -> None:
    response = client.post("/v1/auth/signup", json={"email": "not-an-email", "password": "hunter2-secret"})
    error = assert_error(response, 422, "validation_error")
    assert [e["loc"] for e in error["details"]["errors"]] == [["body", "email"]]
    assert "hunter2-secret" not in response.text


def test_malformed_json_is_422_not_500(client: TestClient) -> None:
    response = client.post("/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error")


def test_openapi_documents_the_error_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "ErrorResponse" in spec["components"]["schemas"]
    signup = spec["paths"]["/v1/auth/signup"]["post"]
    assert signup["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert client.get("/docs").status_code == 200


def test_production_refuses_placeholder_and_short_secrets() -> None:
    for secret in ("", "changethis", "short-but-not-placeholder"):
        with pytest.raises(ValidationError, match="OCTAVIA_JWT_SECRET"):
            Settings(environment="production", jwt_secret=secret, smtp_host="smtp.example.com")
    with pytest.raises(ValidationError, match="OCTAVIA_POLAR_WEBHOOK_SECRET"):
        Settings(
            environment="production",
            jwt_secret="x" * 48,
            smtp_host="smtp.example.com",
            polar_webhook_secret="changethis",
        )
    with pytest.raises(ValidationError, match="OCTAVIA_SMTP_HOST"):
        Settings(environment="production", jwt_secret="x" * 48)
    ok = Settings(environment="production", jwt_secret="x" * 48, smtp_host="smtp.example.com")
    assert ok.jwt_secret.get_secret_value() == "x" * 48


def test_development_defaults(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTAVIA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OCTAVIA_POLAR_PRODUCTS", '{"prod_a": 250}')
    monkeypatch.setenv("OCTAVIA_DATABASE_URL", "")
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path}/control_plane.sqlite3"
    assert settings.mail_dir == tmp_path / "mail"  # type: ignore[operator]
    assert len(settings.jwt_secret.get_secret_value()) >= 32  # random per process in development
    assert settings.polar_products == {"prod_a": 250}
    assert Settings(database_url="postgresql://u@h/db").database_url == "postgresql+psycopg://u@h/db"


def test_polar_products_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="positive"):
        make_settings(polar_products={"prod": 0})
