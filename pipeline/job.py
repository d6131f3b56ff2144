"""The dub entrypoint: `python -m pipeline.job ...` (what the control plane submits as a Ray job) and the engine
behind `octavia dub`.

With no cluster address (argument, or `RAY_ADDRESS` as Ray sets it inside a Ray job) it starts an embedded local
Ray, deploys the Serve applications of `serve_apps/configs/serve-cpu.yaml` (or `serve-gpu.yaml` for the quality
profile) that the run needs, and stops everything at the end. On a cluster it uses the applications already
deployed there (the RayService of the Helm chart), or deploys them with `--deploy`.

Exit codes: 0 every language produced; 1 some languages failed; 2 bad input; 3 any other error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from octavia.errors import BadInputError, OctaviaError
from octavia.languages import normalize
from octavia.signals import exit_on_sigterm, sigterm_handler_kept
from pipeline.dub import DubResult, DubRun, ProgressHook, check_pairs, prepare_input, separation_engine
from pipeline.media.probe import MediaInfo, probe_media
from pipeline.records import DubRequest

if TYPE_CHECKING:
    from octavia.profiles import ProfileModels
    from pipeline.artifacts import ArtifactStore

log = logging.getLogger(__name__)

CONFIGS = Path(__file__).resolve().parent.parent / "serve_apps" / "configs"
EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT, EXIT_ERROR = 0, 1, 2, 3

# Environment of an embedded cluster's processes (what is already set wins). Token auth is for shared clusters;
# the embedded one listens on this machine only. The Serve controller's reconcile loop runs every 0.1 s by
# default, for clusters that scale and fail over; a run's own cluster has fixed replicas, and at 0.1 s the loop
# (and the GCS calls it makes) took 9 % of a core from the models on 2 cores, 3.4 % at 1 s (docs/benchmarks.md).
EMBEDDED_ENVIRONMENT = {"RAY_AUTH_MODE": "disabled", "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "1.0"}


def validate(request: DubRequest) -> MediaInfo:
    """Fail fast, before any cluster starts: unreadable input, no audio, unknown languages or pairs. Returns the
    input's probe."""
    from octavia.profiles import resolve
    from serve_apps.translate.engine import create_translation_engine

    if not request.input.exists():
        from octavia.errors import InputNotFoundError

        raise InputNotFoundError(f"input file not found: {request.input}", details={"path": str(request.input)})
    info = probe_media(request.input)
    info.require_audio()
    targets = [normalize(code) for code in request.targets]
    source = normalize(request.source) if request.source else None
    check_out_dir(request.out_dir)
    profile = resolve(request.profile)
    pairs = set(create_translation_engine(profile.translation).pairs())  # cheap: lists pairs, loads no model
    check_pairs(profile.name, source, targets, pairs)
    return info


def check_out_dir(out_dir: Path) -> None:
    """The outputs' directory exists or can be made, and can be written: checked before any work, without
    making it (a run that fails later leaves no directory behind)."""
    existing = out_dir
    while not existing.exists():  # a file on the way reads as missing: its parent is then that file
        existing = existing.parent
    if not existing.is_dir():
        what = "exists and is not a directory" if existing == out_dir else f"cannot be made: {existing} is a file"
        raise BadInputError(f"--out {out_dir} {what}", details={"path": str(out_dir)})
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInputError(
            f"--out {out_dir} cannot be written: {existing} is not writable", details={"path": str(out_dir)}
        )


def run_name(request: DubRequest) -> str:
    return f"octavia dub {request.input.name} -> {','.join(request.targets)}"


@contextlib.contextmanager
def ray_cluster(address: str | None, *, name: str, dashboard: bool = False) -> Iterator[bool]:
    """Connect to `address` (or the cluster this process runs in), else start an embedded one. Yields
    whether it is embedded."""
    import ray
    from ray.job_config import JobConfig

    address = address or os.environ.get("RAY_ADDRESS")
    embedded = not address
    if ray.is_initialized():
        yield False
        return
    job_config = JobConfig(metadata={"job_name": name})
    with sigterm_handler_kept():
        if embedded:
            for variable, value in EMBEDDED_ENVIRONMENT.items():  # inherited by the raylet and every worker
                os.environ.setdefault(variable, value)
            ray.init(
                num_cpus=os.cpu_count(),
                include_dashboard=dashboard,
                namespace="octavia",
                job_config=job_config,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        else:
            ray.init(address=address, namespace="octavia", job_config=job_config, logging_level=logging.WARNING)
    try:
        yield embedded
    finally:
        # No `serve.shutdown()` first: on the embedded cluster it only drained replicas that `ray.shutdown` stops
        # anyway (4 s of every run, measured).
        ray.shutdown()


def quiet_ray_console() -> None:
    """Keep Ray's INFO lines (Serve starting and deleting applications, Ray Data's execution plans) off the
    driver's console, where they broke up the CLI's progress bars; Ray Data still writes them to the session's
    `logs/ray-data/`, and the Serve controller logs its own. Warnings and errors still show. The Ray job entry
    keeps them: its log is what an operator reads in the dashboard."""
    import ray.data  # noqa: F401  (each configures its logger when imported)
    from ray import serve  # noqa: F401

    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.WARNING)


def deploy_serve_apps(config: Path, families: set[str], *, embedded: bool, workers: int) -> dict[str, str]:
    """Deploy the applications of a Serve config file that the run needs; returns family -> app name.

    The embedded cluster is this run's own: its applications are built in this process, sized to `workers`
    calls at once, and get no HTTP proxy (the run calls its models through handles, nothing else calls them).
    A shared cluster gets the file as `serve deploy` would deploy it."""
    from pipeline.serving import deploy_config, run_config_here

    if embedded:
        return run_config_here(config, only=families, workers=workers)
    return deploy_config(config, only=families)


def needed_families(request: DubRequest, profile_name: str) -> set[str]:
    from octavia.profiles import resolve

    families = {"asr", "diarize", "translate", "tts"}
    if separation_engine(request.separation, resolve(profile_name)) != "none":
        families.add("separate")
    return families


def run_job(
    request: DubRequest,
    *,
    address: str | None = None,
    parallelism: int = 2,
    hook: ProgressHook | None = None,
    local: bool = False,
    deploy: bool = False,
    dashboard: bool = False,
    artifact_dir: Path | None = None,
    local_threads: int = 0,
) -> DubResult:
    """Run one dub; `local=True` runs every stage in this process without Ray (its Whisper and Kokoro with
    `local_threads` threads each; 0: every core)."""
    from octavia.disk import full_disk_reported
    from octavia.profiles import resolve
    from pipeline.artifacts import ArtifactStore, size_cap_from_env, size_capped

    info = validate(request)
    cap = size_cap_from_env()  # a bad value fails here, before any work
    profile = resolve(request.profile)
    request = request.model_copy(update={"profile": profile.name})
    store = ArtifactStore(artifact_dir)
    with size_capped(store, cap), full_disk_reported(output_folder=request.out_dir, artifact_cache=store.root):
        if local:
            from pipeline.clients import LocalClients
            from pipeline.executors import LocalExecutor

            clients = LocalClients(profile, separation_engine(request.separation, profile), cpu_threads=local_threads)
            return DubRun(request, executor=LocalExecutor(), clients=clients, clients_mode="local", store=store,
                          hook=hook, local_threads=local_threads).run()  # fmt: skip
        return _run_on_ray(request, profile, info, store, address=address, parallelism=parallelism, hook=hook,
                           deploy=deploy, dashboard=dashboard)  # fmt: skip


def _run_on_ray(
    request: DubRequest,
    profile: ProfileModels,
    info: MediaInfo,
    store: ArtifactStore,
    *,
    address: str | None,
    parallelism: int,
    hook: ProgressHook | None,
    deploy: bool,
    dashboard: bool,
) -> DubResult:
    from octavia.models.store import ModelStore
    from pipeline.clients import ServeClients
    from pipeline.executors import LocalExecutor, RayDataExecutor
    from serve_apps.tts.voices import import_pitch_tracker

    started = time.monotonic()
    models = ModelStore()
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-input") as pool,
        ray_cluster(address, name=run_name(request), dashboard=dashboard) as embedded,
    ):
        # Hash, extract and VAD the input while Ray starts: `ray.init` keeps about one core of two busy. Then the
        # pitch tracker the speaker profiles need: its import was 3 of the step's 5 s, between the parallel stages.
        preparing = pool.submit(prepare_input, request, store, models, info)
        pool.submit(import_pitch_tracker)
        apps: dict[str, str] = {}
        if embedded or deploy:
            config = CONFIGS / ("serve-gpu.yaml" if profile.name == "quality" else "serve-cpu.yaml")
            # The embedded cluster is this run's own: one replica per model, running `parallelism` calls at once.
            # A shared cluster keeps the file's replicas.
            apps = deploy_serve_apps(config, needed_families(request, profile.name), embedded=embedded,
                                     workers=parallelism)  # fmt: skip
        log.info("cluster ready in %.1f s", time.monotonic() - started)  # read by bench/pipeline_bench.py
        with ServeClients(apps, owned=embedded) as clients:  # closed before the cluster is left
            run = DubRun(
                request,
                executor=RayDataExecutor(parallelism),
                # Lines only wait on the TTS handle: sent from here, not through a Ray Data job's actor.
                line_executor=LocalExecutor(parallelism, clients=clients),
                clients=clients,
                clients_mode="serve",
                store=store,
                models=models,
                hook=hook,
                serve_apps=apps,
            )
            return run.run(preparing.result())


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {value!r}")
    return int(value)


def parse_args(argv: list[str] | None = None) -> tuple[DubRequest, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m pipeline.job", description="Dub one video with Octavia.")
    p.add_argument("--input", required=True, type=Path, help="video or audio file")
    p.add_argument("--to", required=True, help="target languages, comma separated (ISO 639-1: es,pt)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--from", dest="source", default="auto", help="source language or auto (default)")
    p.add_argument("--profile", default="auto", choices=["auto", "offline", "quality"])
    p.add_argument("--speakers", default="auto", help="auto or a number")
    p.add_argument("--separation", default="auto", choices=["auto", "none", "spleeter", "demucs"])
    p.add_argument("--keep-original-audio", action="store_true")
    p.add_argument("--burn-subtitles", action="store_true")
    p.add_argument("--max-chunk-seconds", type=float, default=60.0)
    p.add_argument("--max-speedup", type=float, default=1.25, help="stretch cap before borrowing silence (1-2)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else embedded)")
    p.add_argument("--deploy", action="store_true", help="deploy the Serve applications on the cluster first")
    p.add_argument("--parallelism", type=positive_int, default=2,
                   help="chunks and lines processed at once (on the embedded cluster also the calls each ASR, "
                        "speaker-embedding and TTS replica runs at once)")  # fmt: skip
    p.add_argument("--local", action="store_true", help="no Ray: every stage in this process")
    p.add_argument("--local-threads", type=int, default=0,
                   help="with --local: threads of Whisper and Kokoro (default 0: every core)")  # fmt: skip
    p.add_argument("--progress-url", default=None, help="POST progress here (token in $OCTAVIA_PROGRESS_TOKEN)")
    args = p.parse_args(argv)
    request = DubRequest(
        input=args.input,
        targets=tuple(t.strip() for t in args.to.split(",") if t.strip()),
        source=None if args.source == "auto" else args.source,
        out_dir=args.out,
        profile=args.profile,
        speakers=None if args.speakers == "auto" else int(args.speakers),
        separation=args.separation,
        keep_original_audio=args.keep_original_audio,
        burn_subtitles=args.burn_subtitles,
        max_chunk_seconds=args.max_chunk_seconds,
        max_speedup=args.max_speedup,
    )
    return request, args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    exit_on_sigterm()
    reporter: Any = None
    try:
        request, args = parse_args(argv)
    except ValueError as exc:  # pydantic validation of the arguments, --speakers not a number
        log.error("bad arguments: %s", exc)
        return EXIT_BAD_INPUT
    try:
        if args.progress_url:
            from pipeline.progress import HttpProgressReporter

            reporter = HttpProgressReporter(args.progress_url, os.environ.get("OCTAVIA_PROGRESS_TOKEN", ""),
                                            request.targets)  # fmt: skip
        result = run_job(
            request,
            address=args.address,
            parallelism=args.parallelism,
            hook=reporter,
            local=args.local,
            deploy=args.deploy,
            local_threads=args.local_threads,
        )
    except OctaviaError as exc:
        log.error("%s: %s", exc.code, exc.message)
        if reporter is not None:
            reporter.finish("failed", error={"code": exc.code, "message": exc.message})
        return EXIT_BAD_INPUT if isinstance(exc, BadInputError) else EXIT_ERROR
    except Exception as exc:  # a bug, not the input's fault: the job still ends with a reason
        log.exception("the dub failed")
        if reporter is not None:
            reporter.finish("failed", error={"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
        return EXIT_ERROR
    if reporter is not None:
        if result.ok:
            reporter.finish("succeeded", media_duration=result.duration, warnings=result.warnings)
        else:
            message = "; ".join(f"{lang}: {msg}" for lang, msg in result.failed.items())
            reporter.finish("failed", error={"code": "language_failed", "message": message}, warnings=result.warnings)
    # After a crash or a stop, the first number says how much of the analysis the re-run did not redo.
    log.info("chunks: %d from the artifact cache, %d computed", result.chunks_cached, result.chunks_computed)
    for files in result.outputs.values():
        for f in files:
            log.info("wrote %s", f)
    return EXIT_OK if result.ok else EXIT_PARTIAL


if __name__ == "__main__":
    sys.exit(main())
