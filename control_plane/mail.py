"""Outgoing mail: SMTP in production, `.eml` files in a folder for development (OCTAVIA_MAIL_DIR).

Sending is synchronous inside the request (endpoints are sync and run in the thread pool): a signup whose
verification mail cannot be sent fails with 503 and is rolled back, so the user can simply sign up again.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from control_plane.config import Settings
from control_plane.db import utcnow
from control_plane.errors import ServiceUnavailableError


class MailDeliveryError(ServiceUnavailableError):
    code = "mail_delivery_failed"


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


def build_message(settings: Settings, *, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain="octavia")
    message.set_content(text)
    return message


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpMailer needs OCTAVIA_SMTP_HOST")
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        self.password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        self.timeout = settings.smtp_timeout_seconds

    def send(self, message: EmailMessage) -> None:
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailDeliveryError(
                f"could not send mail through {self.host}:{self.port}: {exc}", details={"smtp_host": self.host}
            ) from exc


class DirectoryMailer:
    """Writes each message as `<utc time>-<uuid>.eml`; open them with any mail client."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
            (self.directory / name).write_bytes(bytes(message))
        except OSError as exc:
            raise MailDeliveryError(f"could not write mail to {self.directory}: {exc}") from exc


def mailer_from_settings(settings: Settings) -> Mailer:
    if settings.mail_dir is not None:
        return DirectoryMailer(settings.mail_dir)
    return SmtpMailer(settings)
