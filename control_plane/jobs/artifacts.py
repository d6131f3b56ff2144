"""A job's output files: `DATA_DIR/jobs/<job id>/out`, written by the pipeline on the cluster (the control plane
and the Ray workers share DATA_DIR).

Names in requests are only ever compared with the names of this listing; a path is built from a listed name, never
from client input. Hidden entries (the pipeline's `.octavia-partial-*` work folder), folders and symlinks are not
artifacts.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
    ".wav": "audio/wav",
    ".json": "application/json",
}
_LANGUAGE_PART = re.compile(r"^[a-z]{2}$")


@dataclass(frozen=True)
class Artifact:
    name: str
    size: int
    kind: str  # video | audio | subtitles | dub_audio | background | transcript | other
    language: str | None
    content_type: str
    path: Path


def job_dir(data_dir: Path, job_id: uuid.UUID) -> Path:
    return data_dir / "jobs" / job_id.hex


def out_dir(data_dir: Path, job_id: uuid.UUID) -> Path:
    return job_dir(data_dir, job_id) / "out"


def reset_out_dir(data_dir: Path, job_id: uuid.UUID) -> Path:
    """An empty output folder for a new attempt, so the listing only ever shows one attempt's files."""
    folder = out_dir(data_dir, job_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def remove_job_files(data_dir: Path, job_id: uuid.UUID) -> None:
    shutil.rmtree(job_dir(data_dir, job_id), ignore_errors=True)


def classify(name: str) -> tuple[str, str | None]:
    """(kind, language) from the pipeline's naming: `<stem>.<lang>.mp4|m4a|srt|vtt|wav`, `<stem>.background.wav`,
    `<stem>.transcript.json`."""
    parts = name.split(".")
    suffix = "." + parts[-1].lower() if len(parts) > 1 else ""
    middle = parts[-2].lower() if len(parts) > 2 else ""
    language = middle if _LANGUAGE_PART.match(middle) else None
    if middle == "background" and suffix == ".wav":
        return "background", None
    if middle == "transcript" and suffix == ".json":
        return "transcript", None
    kinds = {".mp4": "video", ".m4a": "audio", ".srt": "subtitles", ".vtt": "subtitles", ".wav": "dub_audio"}
    return kinds.get(suffix, "other"), language


def list_artifacts(folder: Path) -> list[Artifact]:
    if not folder.is_dir():
        return []
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            kind, language = classify(entry.name)
            suffix = Path(entry.name).suffix.lower()
            found.append(
                Artifact(
                    name=entry.name,
                    size=entry.stat(follow_symlinks=False).st_size,
                    kind=kind,
                    language=language,
                    content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
                    path=Path(entry.path),
                )
            )
    return sorted(found, key=lambda artifact: artifact.name)


def find_artifact(folder: Path, name: str) -> Artifact | None:
    """The listed artifact called exactly `name` (so `../x`, `a/b` or a hidden file never match)."""
    return next((artifact for artifact in list_artifacts(folder) if artifact.name == name), None)


def missing_outputs(folder: Path, languages: list[str]) -> list[str]:
    """Target languages without their dubbed media (`*.<lang>.mp4` or `*.<lang>.m4a`) in `folder`."""
    produced = {a.language for a in list_artifacts(folder) if a.kind in ("video", "audio") and a.size > 0}
    return [language for language in languages if language not in produced]


def download_name(artifact_name: str, upload_id: str, client_filename: str | None) -> str:
    """The name offered to the browser: the upload id in the stem replaced by the client's own file name stem
    (sanitised; it never touches the filesystem)."""
    if not client_filename or not artifact_name.startswith(upload_id + "."):
        return artifact_name
    base = re.split(r"[/\\]", client_filename)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    stem = re.sub(r"[^\w\- ]+", "_", stem, flags=re.UNICODE).strip(" _.")[:100]
    return stem + artifact_name[len(upload_id) :] if stem else artifact_name
