"""Settings of the control plane: one pydantic-settings `Settings`, read from `OCTAVIA_*` environment variables.

Outside development, validators refuse empty or placeholder secrets (full-stack-fastapi-template's
`_check_default_secret`), so a production deployment cannot start with a guessable JWT key.
"""

from __future__ import annotations

import secrets
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "production"]

_PLACEHOLDERS = {"", "changethis", "changeme", "change-me", "secret", "placeholder", "xxx", "todo"}
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
_MIN_JWT_SECRET_BYTES = 32


def default_data_dir() -> Path:
    return Path("~/.local/share/octavia").expanduser()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCTAVIA_", extra="ignore", validate_default=True)

    environment: Environment = "development"
    data_dir: Path = Field(default_factory=default_data_dir)
    # Empty means "SQLite file in data_dir". `postgresql://` URLs are switched to the psycopg 3 driver.
    database_url: str = ""
    # Connections per worker process (PostgreSQL), and as many request threads: a thread holds at most one
    # connection (control_plane/deps.py), so requests never wait for one and never reconnect. Overflow covers
    # the background jobs worker. Keep workers × (pool size + overflow) below the server's max_connections
    # (100 by default).
    database_pool_size: int = Field(default=16, ge=1)
    database_max_overflow: int = Field(default=4, ge=0)
    auto_migrate: bool = True
    public_url: str = "http://127.0.0.1:8001"

    jwt_secret: SecretStr = SecretStr("")
    jwt_issuer: str = "octavia"
    jwt_audience: str = "octavia-api"
    access_token_ttl_seconds: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    verification_token_ttl_seconds: int = Field(default=2 * 24 * 3600, gt=0)

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "Octavia <no-reply@localhost>"
    # Development convenience: write each mail as an .eml file here instead of talking SMTP.
    mail_dir: Path | None = None

    polar_webhook_secret: SecretStr | None = None
    # JSON object in the environment: {"<polar product id>": <credits per unit>}.
    polar_products: dict[str, int] = Field(default_factory=dict)

    ray_address: str | None = None

    # Price: credits per started minute of input, per target language.
    credits_per_minute: int = Field(default=10, gt=0)
    signup_credits: int = Field(default=0, ge=0)

    # Token bucket per API key / user: `rate_limit_per_minute` refill, bursts up to `rate_limit_burst`.
    rate_limit_per_minute: int = Field(default=120, gt=0)
    rate_limit_burst: int = Field(default=60, gt=0)
    # Unauthenticated auth endpoints (signup, login, refresh, ...) per client IP: slows password guessing.
    auth_rate_limit_per_minute: int = Field(default=20, gt=0)
    auth_rate_limit_burst: int = Field(default=10, gt=0)

    # Uploads (tus): files live in data_dir/uploads/<user id>/<upload id>.
    upload_max_bytes: int = Field(default=5 * 1024**3, gt=0)
    # Per user: the total length of their unfinished and complete uploads.
    upload_quota_bytes: int = Field(default=20 * 1024**3, gt=0)
    # An unfinished upload expires this long after its last chunk; the sweep deletes its file.
    upload_expiration_seconds: int = Field(default=24 * 3600, gt=0)
    upload_probe_timeout_seconds: float = Field(default=60.0, gt=0)

    # Outbound webhooks: attempt n (1-based) failing is retried after base x 2^(n-1) seconds, up to max attempts.
    webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Production refuses endpoints on private, loopback and link-local addresses unless this is true.
    webhook_allow_private_addresses: bool = False

    # Jobs. Ray workers post progress to `internal_url` (default: public_url) + /internal/jobs/<id>/progress.
    internal_url: str | None = None
    # The command the Ray job runs; the control plane appends --input/--to/--out/... (the pipeline is installed
    # in the cluster's environment: nothing is uploaded with the job).
    jobs_entrypoint: str = "python -m pipeline.job"
    # The background worker (submit, poll Ray, finish jobs, deliver webhooks, sweep uploads) in the app's lifespan.
    jobs_worker_enabled: bool = True
    jobs_worker_interval_seconds: float = Field(default=2.0, gt=0)
    # Ray jobs submitted at once (the rest wait in `queued`).
    jobs_max_running: int = Field(default=2, ge=1)
    # Ray runs per job (first + retries) after infrastructure failures; a failure the pipeline reports is final.
    jobs_max_attempts: int = Field(default=3, ge=1, le=20)
    jobs_max_target_languages: int = Field(default=5, ge=1, le=50)
    # A running job with no progress report for this long is stopped and retried as an infrastructure failure.
    jobs_stale_seconds: float = Field(default=3600.0, gt=0)
    # Budget of each call to the Ray Jobs API.
    jobs_ray_timeout_seconds: float = Field(default=10.0, gt=0)
    # A finished job's files (DATA_DIR/jobs/<id>) are removed this long after it finished; 0 keeps them until
    # the job is deleted. Without it every dub stays on the shared volume for good.
    jobs_artifact_retention_days: float = Field(default=30.0, ge=0)

    @field_validator("data_dir", "mail_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("polar_products")
    @classmethod
    def _positive_credits(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {product: credits for product, credits in value.items() if credits <= 0}
        if bad:
            raise ValueError(f"OCTAVIA_POLAR_PRODUCTS credits must be positive integers, got {bad}")
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        for plain in ("postgres://", "postgresql://"):
            if value.startswith(plain):
                return "postgresql+psycopg://" + value[len(plain) :]
        return value

    @model_validator(mode="after")
    def _check_secrets_and_defaults(self) -> Self:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'control_plane.sqlite3'}"
        self._check_secret("OCTAVIA_JWT_SECRET", self.jwt_secret, min_length=_MIN_JWT_SECRET_BYTES)
        if self.polar_webhook_secret is not None or (self.polar_products and self.environment == "production"):
            self._check_secret("OCTAVIA_POLAR_WEBHOOK_SECRET", self.polar_webhook_secret or SecretStr(""))
        if self.environment == "production" and not self.smtp_host and self.mail_dir is None:
            raise ValueError("OCTAVIA_SMTP_HOST (or OCTAVIA_MAIL_DIR) must be set in production")
        if self.environment == "development" and not self.smtp_host and self.mail_dir is None:
            self.mail_dir = self.data_dir / "mail"
        if self.environment == "development" and not self.jwt_secret.get_secret_value():
            # Tokens then die with the process; good enough on a laptop, refused in production above.
            self.jwt_secret = SecretStr(secrets.token_urlsafe(48))
        return self

    def _check_secret(self, name: str, value: SecretStr, *, min_length: int = 1) -> None:
        raw = value.get_secret_value()
        weak = raw.strip().lower() in _PLACEHOLDERS or len(raw) < min_length
        if not weak:
            return
        message = f"{name} is empty, a placeholder or shorter than {min_length} characters"
        if self.environment == "production":
            raise ValueError(
                f"{message}; set a random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        if raw:
            warnings.warn(f"{message} (accepted in development only)", stacklevel=2)

    @property
    def polar_enabled(self) -> bool:
        return self.polar_webhook_secret is not None and bool(self.polar_webhook_secret.get_secret_value())

    @property
    def jobs_artifact_retention(self) -> timedelta | None:
        """How long a finished job's files are kept; None: until the job is deleted."""
        days = self.jobs_artifact_retention_days
        return timedelta(days=days) if days > 0 else None

    @property
    def progress_base_url(self) -> str:
        """Where Ray workers reach this service (internal_url, else public_url), without a trailing slash."""
        return (self.internal_url or self.public_url).rstrip("/")
