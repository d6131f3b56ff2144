from __future__ import annotations

import email
import email.policy
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.mail import DirectoryMailer, SmtpMailer, mailer_from_settings
from tests.control_plane.conftest import PASSWORD, make_settings


def test_development_writes_mails_to_the_mail_dir(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, public_url="https://octavia.example.org")
    assert isinstance(mailer_from_settings(settings), DirectoryMailer)
    with TestClient(create_app(settings, session_factory=session_factory)) as client:
        assert (
            client.post("/v1/auth/signup", json={"email": "dev@example.com", "password": PASSWORD}).status_code == 201
        )
    (path,) = (tmp_path / "mail").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "dev@example.com"
    assert "https://octavia.example.org/v1/auth/verify?token=" in message.get_body().get_content()  # type: ignore[union-attr]


def test_smtp_is_used_when_configured_without_mail_dir(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, smtp_host="smtp.example.com", smtp_port=2525)
    mailer = mailer_from_settings(settings)
    assert isinstance(mailer, SmtpMailer) and (mailer.host, mailer.port) == ("smtp.example.com", 2525)
