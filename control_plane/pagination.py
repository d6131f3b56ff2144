"""One pagination shape for every list endpoint: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out.

Keyset (cursor) pagination, newest first: stable while rows are appended (ledger entries, jobs, deliveries), no
OFFSET scans. The cursor is opaque to clients: URL-safe base64 of the last row's sort key.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from control_plane.errors import InvalidRequestError

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

RowT = TypeVar("RowT")
ItemT = TypeVar("ItemT")


class InvalidCursorError(InvalidRequestError):
    code = "invalid_cursor"


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageParamsDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None = None


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode_value(raw: Any, python_type: type) -> Any:
    if python_type is datetime:
        return datetime.fromisoformat(raw)
    if python_type is uuid.UUID:
        return uuid.UUID(raw)
    if python_type is int:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise TypeError("not an integer")
        return raw
    return python_type(raw)


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: Sequence[type]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError("wrong cursor arity")
        return [_decode_value(value, python_type) for value, python_type in zip(raw, types, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursorError("invalid pagination cursor", details={"cursor": cursor}) from exc


def paginate(
    session: Session,
    statement: Select[RowT],
    *,
    order_by: Sequence[InstrumentedAttribute[Any]],
    params: PageParams,
) -> tuple[list[RowT], str | None]:
    """Run `statement` newest first by the `order_by` key columns (the last one unique); for repositories."""
    if params.cursor is not None:
        types = [column.type.python_type for column in order_by]
        after = decode_cursor(params.cursor, types)
        bounds = [literal(value, column.type) for value, column in zip(after, order_by, strict=True)]
        statement = statement.where(tuple_(*order_by) < tuple_(*bounds))
    statement = statement.order_by(*(column.desc() for column in order_by)).limit(params.limit + 1)
    rows = list(session.scalars(statement))
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, column.key) for column in order_by])
