"""Every table, imported in one place: Alembic's autogenerate and `Base.metadata` see the whole schema."""

from control_plane.api_keys.models import ApiKey
from control_plane.auth.models import RefreshToken
from control_plane.credits.models import CreditAccount, CreditEntry, CreditReservation
from control_plane.db import Base
from control_plane.jobs.models import Job, JobEvent
from control_plane.polar.models import PolarWebhookEvent
from control_plane.uploads.models import Upload
from control_plane.users.models import User
from control_plane.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "ApiKey",
    "Base",
    "CreditAccount",
    "CreditEntry",
    "CreditReservation",
    "Job",
    "JobEvent",
    "PolarWebhookEvent",
    "RefreshToken",
    "Upload",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
