"""Uploads over tus 1.0: the real `tuspy` client against uvicorn (resume after a dropped connection), the protocol
corner cases through the TestClient, the media check, quotas, expiry and isolation between users."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker
from tusclient import client as tus_client
from tusclient.exceptions import TusUploadFailed
from tusclient.storage.filestorage import FileStorage

from control_plane.app import create_app
from control_plane.auth import tokens
from control_plane.auth.tokens import TokenKind
from control_plane.config import Settings
from control_plane.db import create_session_factory, utcnow
from control_plane.uploads import service, storage
from control_plane.uploads.models import Upload, UploadStatus
from control_plane.users.models import User
from tests.control_plane.conftest import PASSWORD_HASH, TestUser, assert_error, make_settings
from tests.control_plane.live_server import serve_app
from tests.factories import ffmpeg, small_filesystem

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 8 * 1024


@dataclass(frozen=True)
class Media:
    av: Path  # 2 s of a 440 Hz tone over a test pattern
    silent_video: Path  # the same picture, no audio stream
    text: Path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    folder = tmp_path_factory.mktemp("media")
    av, silent = folder / "clip.mp4", folder / "silent.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-f", "lavfi", "-i", "testsrc2=size=160x120:duration=2",
        "-shortest", str(av),
    )  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:duration=2", str(silent))
    text = folder / "notes.mp4"  # the name lies: only the content counts
    text.write_text("these are not the frames you are looking for\n" * 200)
    return Media(av=av, silent_video=silent, text=text)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _sha1_header(chunk: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(chunk).digest()).decode()


def _create(client: TestClient, user: TestUser, length: int, filename: str = "clip.mp4") -> str:
    response = client.post(
        "/v1/uploads",
        headers={**user.headers, **TUS, "Upload-Length": str(length), "Upload-Metadata": f"filename {_b64(filename)}"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["tus-resumable"] == "1.0.0"
    return urlsplit(response.headers["location"]).path


def _patch(client: TestClient, user: TestUser, url: str, offset: int, chunk: bytes, **headers: str) -> Any:
    return client.patch(
        url,
        content=chunk,
        headers={
            **user.headers,
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


def _upload_all(client: TestClient, user: TestUser, path: Path) -> tuple[str, Any]:
    data = path.read_bytes()
    url = _create(client, user, len(data), path.name)
    return url, _patch(client, user, url, 0, data)


def _row(session: Session, url: str) -> Upload:
    session.expire_all()
    row = session.get(Upload, url.rsplit("/", 1)[-1])
    assert row is not None
    return row


# --- the real client --------------------------------------------------------------------------------------------


@dataclass
class Live:
    """The app under uvicorn on its own database connections (real commits, as in production: the per-test
    rolled-back connection cannot serve overlapping requests), with users removed afterwards."""

    base_url: str
    session_factory: sessionmaker[Session]
    user_ids: list[uuid.UUID]

    def make_user(self, settings: Settings) -> TestUser:
        with self.session_factory.begin() as session:
            user = User(email=f"live-{uuid.uuid4().hex[:10]}@example.com", password_hash=PASSWORD_HASH)
            user.email_verified_at = utcnow()
            session.add(user)
        self.user_ids.append(user.id)
        token = tokens.issue(settings, TokenKind.ACCESS, user.id)
        return TestUser(user=user, headers={"Authorization": f"Bearer {token}"})

    def upload(self, url: str) -> Upload:
        with self.session_factory() as session:
            row = session.get(Upload, url.rsplit("/", 1)[-1])
            assert row is not None
            return row


@pytest.fixture
def live(db_engine: Engine, settings: Settings) -> Iterator[Live]:
    factory = create_session_factory(db_engine)
    state = Live(base_url="", session_factory=factory, user_ids=[])
    with serve_app(create_app(settings, session_factory=factory)) as base_url:
        state.base_url = base_url
        yield state
    with factory.begin() as session:
        session.execute(delete(Upload).where(Upload.user_id.in_(state.user_ids)))
        session.execute(delete(User).where(User.id.in_(state.user_ids)))


def _drop_connection_mid_chunk(base_url: str, path: str, user: TestUser, offset: int, chunk: bytes) -> None:
    """Starts a PATCH announcing `chunk`, sends half of it, and drops the connection: a network failure."""
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {user.headers['Authorization']}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(chunk)}\r\n\r\n"
    )
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    with socket.create_connection((host, port)) as connection:
        connection.sendall(head.encode() + chunk[: len(chunk) // 2])
        time.sleep(0.2)  # let the server start streaming the body to disk


def test_tuspy_upload_survives_a_dropped_connection_and_resumes(
    live: Live, settings: Settings, media: Media, tmp_path: Path
) -> None:
    user = live.make_user(settings)
    source = media.av
    size = source.stat().st_size
    url_store = FileStorage(str(tmp_path / "tus-urls.json"))
    base_url = live.base_url
    options = requests.options(f"{base_url}/v1/uploads", timeout=5)
    assert options.status_code == 204
    assert options.headers["tus-version"] == "1.0.0"
    assert set(options.headers["tus-extension"].split(",")) == {"creation", "checksum", "termination", "expiration"}
    assert options.headers["tus-checksum-algorithm"] == "sha1"

    tus = tus_client.TusClient(f"{base_url}/v1/uploads", headers=user.headers)
    first = tus.uploader(
        str(source),
        chunk_size=CHUNK,
        metadata={"filename": "../../etc/passwd", "filetype": "video/mp4"},
        store_url=True,
        url_storage=url_store,
        upload_checksum=True,
    )
    first.upload_chunk()
    first.upload_chunk()
    assert first.offset == 2 * CHUNK
    upload_url = first.url
    assert upload_url.startswith(f"{base_url}/v1/uploads/")

    with source.open("rb") as stream:
        stream.seek(2 * CHUNK)
        third_chunk = stream.read(CHUNK)
    _drop_connection_mid_chunk(base_url, urlsplit(upload_url).path, user, 2 * CHUNK, third_chunk)
    # Without a checksum the bytes that arrived are kept: the server records them once it sees the drop.
    deadline = time.monotonic() + 10
    while (offset := first.get_offset()) == 2 * CHUNK and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 2 * CHUNK < offset < 3 * CHUNK

    # A new client process: finds the URL through its URL store and resumes from the server's offset.
    resumed = tus_client.TusClient(f"{base_url}/v1/uploads", headers=user.headers).uploader(
        str(source), chunk_size=CHUNK, store_url=True, url_storage=url_store, upload_checksum=True
    )
    assert resumed.url == upload_url and resumed.offset == offset
    resumed.upload()
    assert resumed.offset == size

    head = requests.head(upload_url, headers={**user.headers, **TUS}, timeout=5)
    assert head.status_code == 200
    assert (head.headers["upload-offset"], head.headers["upload-length"]) == (str(size), str(size))
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["upload-metadata"] == f"filename {_b64('../../etc/passwd')},filetype {_b64('video/mp4')}"
    listed = requests.get(f"{base_url}/v1/uploads", headers=user.headers, timeout=5).json()["items"]

    row = live.upload(upload_url)
    assert row.status is UploadStatus.COMPLETE and row.offset == size and row.completed_at is not None
    assert row.media_duration == pytest.approx(2.0, abs=0.1)
    assert row.media_info is not None and {s["codec_type"] for s in row.media_info["streams"]} == {"audio", "video"}
    stored = Path(row.storage_path)
    assert stored == tmp_path / "uploads" / str(user.id) / row.id  # the client's "filename" never reaches the disk
    assert _sha256(stored) == _sha256(source)
    assert row.filename == "../../etc/passwd" and row.filetype == "video/mp4"
    assert [(item["id"], item["status"]) for item in listed] == [(row.id, "complete")]
    assert listed[0]["media_duration"] == pytest.approx(2.0, abs=0.1)


def test_tuspy_sees_the_rejection_of_a_file_that_is_not_media(live: Live, settings: Settings, media: Media) -> None:
    user = live.make_user(settings)
    uploader = tus_client.TusClient(f"{live.base_url}/v1/uploads", headers=user.headers).uploader(
        str(media.text), chunk_size=CHUNK
    )
    with pytest.raises(TusUploadFailed) as failed:
        uploader.upload()
    assert failed.value.status_code == 422
    assert b'"not_media"' in failed.value.response_content
    row = live.upload(uploader.url)
    assert row.status is UploadStatus.REJECTED and row.error_code == "not_media"
    assert not Path(row.storage_path).exists()


# --- protocol -----------------------------------------------------------------------------------------------------


def test_whole_upload_in_one_patch_is_probed(
    client: TestClient, make_user: Callable[..., TestUser], session: Session, media: Media
) -> None:
    user = make_user()
    url, response = _upload_all(client, user, media.av)
    assert response.status_code == 204, response.text
    assert response.headers["upload-offset"] == str(media.av.stat().st_size)
    assert response.headers["tus-resumable"] == "1.0.0"
    body = client.get(url, headers=user.headers).json()
    assert body["status"] == "complete" and body["media_duration"] == pytest.approx(2.0, abs=0.1)
    assert body["filename"] == "clip.mp4" and body["error"] is None
    assert service.get_ready_upload(session, user.id, body["id"]).id == body["id"]


def test_checksum_mismatch_discards_the_chunk(
    client: TestClient, make_user: Callable[..., TestUser], session: Session, media: Media
) -> None:
    user = make_user()
    data = media.av.read_bytes()
    url = _create(client, user, len(data))
    good = _patch(client, user, url, 0, data[:CHUNK], **{"Upload-Checksum": _sha1_header(data[:CHUNK])})
    assert good.status_code == 204 and good.headers["upload-offset"] == str(CHUNK)
    chunk = data[CHUNK : 2 * CHUNK]
    bad = _patch(client, user, url, CHUNK, chunk, **{"Upload-Checksum": _sha1_header(chunk[:-1] + b"\x00")})
    error = assert_error(bad, 460, "checksum_mismatch")
    assert error["details"]["offset"] == CHUNK
    assert bad.headers["tus-resumable"] == "1.0.0"
    head = client.head(url, headers={**user.headers, **TUS})
    assert head.headers["upload-offset"] == str(CHUNK)
    assert Path(_row(session, url).storage_path).stat().st_size == CHUNK
    unsupported = _patch(client, user, url, CHUNK, chunk, **{"Upload-Checksum": "md5 " + _b64("x" * 16)})
    assert_error(unsupported, 400, "unsupported_checksum_algorithm")


def test_offset_mismatch_is_409_and_changes_nothing(
    client: TestClient, make_user: Callable[..., TestUser], session: Session, media: Media
) -> None:
    user = make_user()
    data = media.av.read_bytes()
    url = _create(client, user, len(data))
    assert _patch(client, user, url, 0, data[:CHUNK]).status_code == 204
    for wrong in (0, CHUNK + 1):
        error = assert_error(_patch(client, user, url, wrong, data[wrong : wrong + CHUNK]), 409, "offset_mismatch")
        assert error["details"] == {"upload_offset": wrong, "expected_offset": CHUNK}
    assert _row(session, url).offset == CHUNK
    assert Path(_row(session, url).storage_path).stat().st_size == CHUNK


def test_unsupported_tus_version_is_412_with_tus_version(
    client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    for headers in ({"Tus-Resumable": "0.2.2"}, {}):
        response = client.post("/v1/uploads", headers={**user.headers, **headers, "Upload-Length": "10"})
        assert_error(response, 412, "unsupported_tus_version")
        assert response.headers["tus-version"] == "1.0.0"


@pytest.mark.parametrize(("path", "code"), [("text", "not_media"), ("silent_video", "no_audio_stream")])
def test_unusable_media_is_rejected_and_deleted(
    client: TestClient,
    make_user: Callable[..., TestUser],
    session: Session,
    media: Media,
    path: str,
    code: str,
) -> None:
    user = make_user()
    url, response = _upload_all(client, user, getattr(media, path))
    error = assert_error(response, 422, code)
    assert response.headers["tus-resumable"] == "1.0.0"
    row = _row(session, url)  # the rejection was committed although the request failed
    assert row.status is UploadStatus.REJECTED and row.error_code == code
    assert not Path(row.storage_path).exists()
    assert error["details"]["upload_id"] == row.id
    body = client.get(url, headers=user.headers).json()
    assert body["status"] == "rejected" and body["error"]["code"] == code
    head = client.head(url, headers={**user.headers, **TUS})
    assert head.status_code == 410
    with pytest.raises(service.UploadNotReadyError):
        service.get_ready_upload(session, user.id, row.id)


def test_a_playlist_pointing_at_media_is_not_media(
    client: TestClient, make_user: Callable[..., TestUser], media: Media, tmp_path: Path
) -> None:
    """ffprobe would follow an HLS playlist to the files it names; only container formats are admitted."""
    user = make_user()
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{media.av}\n#EXT-X-ENDLIST\n")
    _url, response = _upload_all(client, user, playlist)
    assert_error(response, 422, "not_media")


def test_size_limit_and_quota_are_413(
    settings: Any, session_factory: sessionmaker[Session], make_user: Callable[..., TestUser], media: Media
) -> None:
    size = media.av.stat().st_size
    limited = make_settings(data_dir=settings.data_dir, upload_max_bytes=size, upload_quota_bytes=2 * size + size // 2)
    user = make_user()
    with TestClient(create_app(limited, session_factory=session_factory)) as client:
        too_big = client.post("/v1/uploads", headers={**user.headers, **TUS, "Upload-Length": str(size + 1)})
        error = assert_error(too_big, 413, "upload_too_large")
        assert error["details"] == {"length": size + 1, "max_bytes": size}
        assert client.options("/v1/uploads").headers["tus-max-size"] == str(size)

        first, response = _upload_all(client, user, media.av)
        assert response.status_code == 204
        _create(client, user, size)  # unfinished uploads count too
        over = client.post("/v1/uploads", headers={**user.headers, **TUS, "Upload-Length": str(size)})
        error = assert_error(over, 413, "upload_quota_exceeded")
        assert error["details"] == {
            "quota_bytes": 2 * size + size // 2,
            "used_bytes": 2 * size,
            "requested_bytes": size,
        }
        # Deleting frees the quota.
        assert client.delete(first, headers={**user.headers, **TUS}).status_code == 204
        _create(client, user, size)

        # A chunk that runs past the declared length is refused before and while streaming.
        owner = make_user()
        url = _create(client, owner, 100)
        assert_error(_patch(client, owner, url, 0, b"x" * 101), 413, "chunk_too_large")
        chunked = client.patch(
            url,
            content=iter([b"x" * 60, b"x" * 60]),  # no Content-Length: only streaming can notice
            headers={
                **owner.headers,
                **TUS,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert_error(chunked, 413, "chunk_too_large")
        assert client.head(url, headers={**owner.headers, **TUS}).headers["upload-offset"] == "0"


def test_expired_uploads_are_swept(
    client: TestClient, make_user: Callable[..., TestUser], session: Session, media: Media
) -> None:
    user = make_user()
    data = media.av.read_bytes()
    url = _create(client, user, len(data))
    response = _patch(client, user, url, 0, data[:CHUNK])
    expires_header = response.headers["upload-expires"]
    assert expires_header.endswith(" GMT")
    done_url, _ = _upload_all(client, user, media.av)
    fresh_url = _create(client, user, len(data))
    row = _row(session, url)
    path = Path(row.storage_path)
    assert path.exists()

    assert service.sweep_expired(session, now=row.expires_at - timedelta(seconds=1)) == 0
    later = row.expires_at + timedelta(seconds=1)
    fresh = _row(session, fresh_url)
    fresh.expires_at = later + timedelta(hours=1)  # a later upload that has not expired yet
    session.flush()
    assert service.sweep_expired(session, now=later) == 1
    assert not path.exists()
    assert _row(session, url).status is UploadStatus.EXPIRED
    assert _row(session, done_url).status is UploadStatus.COMPLETE  # complete uploads do not expire
    assert _row(session, fresh_url).status is UploadStatus.UPLOADING
    assert service.sweep_expired(session, now=later) == 0

    assert_error(_patch(client, user, url, CHUNK, data[CHUNK : 2 * CHUNK]), 410, "upload_expired")
    assert client.head(url, headers={**user.headers, **TUS}).status_code == 410
    assert client.get(url, headers=user.headers).json()["status"] == "expired"


def test_an_unswept_expired_upload_refuses_chunks(
    client: TestClient, make_user: Callable[..., TestUser], session: Session
) -> None:
    user = make_user()
    url = _create(client, user, 100)
    row = _row(session, url)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert_error(_patch(client, user, url, 0, b"x" * 10), 410, "upload_expired")


def test_termination_deletes_the_file(
    client: TestClient, make_user: Callable[..., TestUser], session: Session, media: Media
) -> None:
    user = make_user()
    url, _ = _upload_all(client, user, media.av)
    path = Path(_row(session, url).storage_path)
    assert path.exists()
    assert client.delete(url, headers={**user.headers, **TUS}).status_code == 204
    assert not path.exists()
    assert _row(session, url).status is UploadStatus.DELETED
    assert client.head(url, headers={**user.headers, **TUS}).status_code == 404
    assert_error(client.get(url, headers=user.headers), 404, "upload_not_found")
    assert_error(client.delete(url, headers={**user.headers, **TUS}), 404, "upload_not_found")
    assert client.get("/v1/uploads", headers=user.headers).json()["items"] == []


@pytest.fixture
def alice_upload(client: TestClient, make_user: Callable[..., TestUser], media: Media) -> Iterator[tuple[str, str]]:
    alice = make_user()
    data = media.av.read_bytes()
    url = _create(client, alice, len(data))
    assert _patch(client, alice, url, 0, data[:CHUNK]).status_code == 204
    yield url, alice.headers["Authorization"]


def _assert_untouched(client: TestClient, url: str, alice_auth: str, session: Session) -> None:
    row = _row(session, url)
    assert (row.status, row.offset) == (UploadStatus.UPLOADING, CHUNK)
    assert Path(row.storage_path).stat().st_size == CHUNK
    assert client.head(url, headers={"Authorization": alice_auth, **TUS}).headers["upload-offset"] == str(CHUNK)


def test_another_user_cannot_head(
    client: TestClient, make_user: Callable[..., TestUser], alice_upload: tuple[str, str], session: Session
) -> None:
    url, alice_auth = alice_upload
    response = client.head(url, headers={**make_user().headers, **TUS})
    assert response.status_code == 404 and "upload-offset" not in response.headers
    _assert_untouched(client, url, alice_auth, session)


def test_another_user_cannot_patch(
    client: TestClient, make_user: Callable[..., TestUser], alice_upload: tuple[str, str], session: Session
) -> None:
    url, alice_auth = alice_upload
    assert_error(_patch(client, make_user(), url, CHUNK, b"y" * 100), 404, "upload_not_found")
    _assert_untouched(client, url, alice_auth, session)


def test_another_user_cannot_delete(
    client: TestClient, make_user: Callable[..., TestUser], alice_upload: tuple[str, str], session: Session
) -> None:
    url, alice_auth = alice_upload
    assert_error(client.delete(url, headers={**make_user().headers, **TUS}), 404, "upload_not_found")
    _assert_untouched(client, url, alice_auth, session)


def test_another_user_cannot_get_or_list(
    client: TestClient, make_user: Callable[..., TestUser], alice_upload: tuple[str, str], session: Session
) -> None:
    url, alice_auth = alice_upload
    bob = make_user()
    assert_error(client.get(url, headers=bob.headers), 404, "upload_not_found")
    assert client.get("/v1/uploads", headers=bob.headers).json()["items"] == []
    upload_id = url.rsplit("/", 1)[-1]
    with pytest.raises(service.UploadNotFoundError):
        service.get_ready_upload(session, bob.id, upload_id)
    _assert_untouched(client, url, alice_auth, session)


def test_listing_is_paginated(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    created = [_create(client, user, 100 + i).rsplit("/", 1)[-1] for i in range(3)]
    first = client.get("/v1/uploads", params={"limit": 2}, headers=user.headers).json()
    second = client.get("/v1/uploads", params={"limit": 2, "cursor": first["next_cursor"]}, headers=user.headers).json()
    assert [u["id"] for u in first["items"] + second["items"]] == created[::-1]
    assert second["next_cursor"] is None


def test_bad_requests_are_4xx_with_the_error_shape(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    url = _create(client, user, 100)
    auth = {**user.headers, **TUS}
    create_cases: list[dict[str, str]] = [
        {},
        {"Upload-Length": "abc"},
        {"Upload-Length": "-1"},
        {"Upload-Length": "+5"},
        {"Upload-Length": "1e3"},
        {"Upload-Length": "9" * 30},
        {"Upload-Length": "0"},
        {"Upload-Length": "10", "Upload-Defer-Length": "1"},
        {"Upload-Defer-Length": "1"},
        {"Upload-Length": "10", "Upload-Metadata": "filename not-base64!"},
        {"Upload-Length": "10", "Upload-Metadata": "filename YQ==,filename YQ=="},
        {"Upload-Length": "10", "Upload-Metadata": "bad key YQ=="},
        {"Upload-Length": "10", "Upload-Metadata": "filename " + _b64("x") + " extra"},
        {"Upload-Length": "10", "Upload-Metadata": "filename " + base64.b64encode(b"\xff\xfe").decode()},
    ]
    for headers in create_cases:
        response = client.post("/v1/uploads", headers={**auth, **headers})
        assert 400 <= response.status_code < 500, (headers, response.text)
        assert_error(response, response.status_code)
    patch_cases: list[dict[str, str]] = [
        {"Upload-Offset": "x", "Content-Type": "application/offset+octet-stream"},
        {"Content-Type": "application/offset+octet-stream"},
        {"Upload-Offset": "0", "Content-Type": "application/json"},
        {"Upload-Offset": "0"},
        {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "Upload-Checksum": "sha1 !!"},
        {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "Upload-Checksum": "sha1"},
        {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "Upload-Checksum": "sha1 YQ=="},
    ]
    for headers in patch_cases:
        response = client.patch(url, content=b"abc", headers={**auth, **headers})
        assert 400 <= response.status_code < 500, (headers, response.text)
        assert_error(response, response.status_code)
        assert response.headers["tus-resumable"] == "1.0.0"
    for bad_id in ("nothex", "0" * 31, "Z" * 32, uuid.uuid4().hex, "..%2F..%2Fetc"):
        for method in ("GET", "PATCH", "DELETE"):
            response = client.request(method, f"/v1/uploads/{bad_id}", headers=auth)
            assert 400 <= response.status_code < 500, (method, bad_id, response.text)
            assert_error(response, response.status_code)
        assert client.head(f"/v1/uploads/{bad_id}", headers=auth).status_code == 404
    unauthenticated = client.patch(url, content=b"abc", headers={**TUS, "Upload-Offset": "0"})
    assert_error(unauthenticated, 401)
    assert unauthenticated.headers["tus-resumable"] == "1.0.0"
    assert_error(client.get("/v1/uploads", params={"limit": "x"}, headers=user.headers), 422)
    assert_error(client.get("/v1/uploads", params={"cursor": "%%"}, headers=user.headers), 422)
    assert _row_offset(client, url, auth) == 0


def _row_offset(client: TestClient, url: str, headers: dict[str, str]) -> int:
    return int(client.head(url, headers=headers).headers["upload-offset"])


def test_a_second_writer_is_locked_out(
    client: TestClient, make_user: Callable[..., TestUser], session: Session
) -> None:
    user = make_user()
    url = _create(client, user, 100)
    path = Path(_row(session, url).storage_path)
    with storage.locked_file(path):  # a request from another worker process writing right now
        assert_error(_patch(client, user, url, 0, b"x" * 10), 423, "upload_locked")
        assert service.sweep_expired(session, now=utcnow() + timedelta(days=30)) == 0  # busy: left for later
    assert _patch(client, user, url, 0, b"x" * 10).status_code == 204
    rows = session.scalars(select(Upload).where(Upload.user_id == user.id)).all()
    assert [r.offset for r in rows] == [10]


def test_a_chunk_that_fills_the_disk_is_507_and_the_upload_goes_on_from_where_it_was(
    client: TestClient, make_user: Callable[..., TestUser], session: Session, settings: Settings
) -> None:
    user = make_user()
    chunk = bytes(range(256)) * 6144  # 1.5 MiB
    with small_filesystem(settings.data_dir / "uploads", "1m"):  # the uploads' volume, 1 MiB
        url = _create(client, user, 2 * len(chunk))
        refused = assert_error(_patch(client, user, url, 0, chunk), 507, "storage_full")
        assert refused["details"] == {"offset": 0}
        assert _row(session, url).offset == 0
        assert Path(_row(session, url).storage_path).stat().st_size == 0  # the partial chunk was cut off
        third = len(chunk) // 3
        assert _patch(client, user, url, 0, chunk[:third]).status_code == 204  # what fits is taken
        assert client.head(url, headers={**user.headers, **TUS}).headers["upload-offset"] == str(third)
        assert Path(_row(session, url).storage_path).stat().st_size == third
