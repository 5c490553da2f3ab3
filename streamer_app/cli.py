"""The `streamer` command: the composition root that wires settings, stores and apps together.

It is the one module allowed to import the applications (see [importlinter] in setup.cfg).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from drm import KeyRing
from streamer.audit.events import admin_action, ingest_submitted, kek_rotated
from streamer.audit.model import AuditAction, AuditEvent
from streamer.audit.recorders import cli_actor
from streamer.audit.spool import AUDIT_SPOOL_DIR
from streamer.errors import StreamerError
from streamer.jobs.port import Job
from streamer.objects.port import ABANDONED_UPLOAD_AGE
from streamer.settings import Settings, load_settings
from streamer_app.ads_cli import add_ads_commands

# `streamer bench NAME ...` runs `python -m benchmarks.NAME ...` (benchmarks/README.md).
BENCHMARKS = (
    "ad_decisions",
    "ad_segments",
    "listeners",
    "logship",
    "soak",
    "telemetry",
    "transcode",
    "vegeta_paced",
    "wrk_check",
)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        Path(args.config) if args.config else None,
        data_dir=args.data_dir,
        **{
            k: v
            for k, v in vars(args).items()
            if k in ("host", "port", "segments", "serve_ingest") and v is not None
        },
    )


def _child_cli(args: argparse.Namespace) -> tuple[str, ...]:
    """`streamer` with this run's --config, --data-dir and -v: how serve starts its children."""
    return (
        sys.executable,
        "-m",
        "streamer_app.cli",
        *(("--config", args.config) if args.config else ()),
        *(("--data-dir", args.data_dir) if args.data_dir else ()),
        *(("-v",) if args.verbose else ()),
    )


def _keyring(settings: Settings) -> KeyRing:
    from streamer.keyring_file import load_or_create_keyring

    return load_or_create_keyring(settings.kek_path)


def _audit(settings: Settings, *events: AuditEvent) -> None:
    """Record an operator's action in the audit log, or in the local spool if the store is
    down (the edge writes it later); StorageError only if neither takes it."""
    from streamer.audit.recorders import open_recorder, stream_name

    recorder = open_recorder(settings, stream_name("cli"))
    try:
        if recorder.record(events):
            with contextlib.suppress(StreamerError):  # what earlier commands spooled
                recorder.replay()
        else:
            print(
                f"streamer: the audit log is unavailable; {len(events)} entries spooled under"
                f" {settings.data_dir / AUDIT_SPOOL_DIR} for the edge to write later",
                file=sys.stderr,
            )
    finally:
        recorder.close()


def cmd_rotate_kek(args: argparse.Namespace) -> int:
    from streamer.backends import open_object_store
    from streamer.keyring_file import save_keyring
    from transcoder.kek_rotation import rotate_kek

    settings = _settings(args)
    path = settings.kek_path
    report = rotate_kek(
        open_object_store(settings), _keyring(settings), lambda ring: save_keyring(path, ring)
    )
    _audit(
        settings,
        kek_rotated(
            actor=cli_actor(),
            new_kek_id=report.new_kek_id,
            records=report.records,
            keys=report.keys,
            at_s=time.time(),
        ),
    )
    print(
        f"active KEK is now {report.new_kek_id}; re-wrapped {report.keys} content keys "
        f"in {report.records} track records"
    )
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from streamer.backends import open_job_store

    jobs = open_job_store(_settings(args))
    listed = [jobs.get(args.job_id)] if args.job_id else jobs.list_jobs(args.limit)
    for job in listed:
        outcome = job.version or (
            f"[{job.error_code}] {job.error_message}" if job.error_code else ""
        )
        print(
            f"{job.job_id}  {job.state:9}  {job.progress_percent:5.1f}%  "
            f"{job.spec.track_id:24}  {job.spec.filename}  {outcome}"
        )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from streamer.backends import open_job_store, open_object_store
    from transcoder.ingest_cli import ingest_files

    settings = _settings(args)
    metadata = json.loads(Path(args.metadata).read_text()) if args.metadata else {}

    def audit_submission(job: Job) -> None:
        _audit(
            settings,
            ingest_submitted(
                actor=cli_actor(),
                job_id=job.job_id,
                track_id=job.spec.track_id,
                filename=job.spec.filename,
                master_sha256=job.spec.master_sha256,
                via="cli",
                kind=job.spec.kind,
                at_s=time.time(),
            ),
        )

    return ingest_files(
        [Path(p) for p in args.paths],
        settings=settings,
        store=open_object_store(settings),
        jobs=open_job_store(settings),
        ring=_keyring(settings),
        track_id=args.track_id,
        metadata=metadata,
        as_json=args.json,
        on_submitted=audit_submission,
        kind=args.kind,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from streamer.backends import open_job_store, open_object_store
    from transcoder.worker import IngestWorker

    settings = _settings(args)
    worker = IngestWorker(
        settings,
        open_object_store(settings),
        open_job_store(settings),
        _keyring(settings),
        lease_s=args.lease_s,
    )
    logging.getLogger(__name__).info("ingest worker %s started", worker.worker_id)
    if args.once:
        job = worker.run_one()
        print(json.dumps({"job": job.job_id if job else None, "state": job.state if job else None}))
        return 0 if job is None or job.state == "published" else 1
    try:
        worker.run_until(lambda: False, idle_s=args.idle_s)
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_cleanup_uploads(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from streamer.backends import open_object_store
    from streamer.objects.port import IncompleteUploads

    settings = _settings(args)
    store = open_object_store(settings)
    if not isinstance(store, IncompleteUploads):
        print(f"the {settings.object_store} object store keeps no incomplete uploads")
        return 0
    aborted = store.cleanup_incomplete_uploads(timedelta(hours=args.older_than))
    _audit(
        settings,
        admin_action(
            AuditAction.UPLOADS_CLEANED,
            actor=cli_actor(),
            subject=f"object-store:{settings.object_store}",
            at_s=time.time(),
            older_than_h=args.older_than,
            aborted=aborted,
        ),
    )
    print(f"aborted {aborted} incomplete uploads started over {args.older_than:g} h ago")
    return 0


def cmd_logship(args: argparse.Namespace) -> int:
    from cdn_edge.logship.process import run_logship

    stats = run_logship(
        _settings(args),
        Path(args.log),
        Path(args.state) if args.state else None,
        once=args.once,
        batch_lines=args.batch_lines,
        metrics_file=Path(args.metrics_file) if args.metrics_file else None,
        rotate_wait_s=args.rotate_wait_s,
    )
    if args.once:
        print(json.dumps(dataclasses.asdict(stats), sort_keys=True))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cdn_edge.delivery_tier import serve
    from transcoder.edge_mount import mount_ingest

    settings = _settings(args)
    return serve(
        settings,
        cli=_child_cli(args),
        workers=args.workers,
        certfile=Path(args.certfile) if args.certfile else None,
        keyfile=Path(args.keyfile) if args.keyfile else None,
        hooks=(mount_ingest,) if settings.serve_ingest else (),
        edge_port=args.edge_port,
    )


def cmd_token(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _audit(
        settings,
        admin_action(
            AuditAction.TOKEN_MINTED,
            actor=cli_actor(),
            subject=f"{args.scope}:{args.user}",
            at_s=time.time(),
            scope=args.scope,
            ttl_s=args.ttl_s,
            **({"tier": args.tier} if args.scope == "listener" else {}),
        ),
    )
    if args.scope == "ingest":
        from transcoder.http_api import issue_dev_ingest_token

        print(issue_dev_ingest_token(settings, args.user, args.ttl_s))
        return 0
    if args.scope == "analytics":
        from cdn_edge.analytics_auth import issue_dev_analytics_token

        print(
            issue_dev_analytics_token(settings, args.user, args.ttl_s, all_tracks=args.all_tracks)
        )
        return 0
    if args.scope in ("admin", "ads-admin"):  # one operator token; the scope names the API
        from cdn_edge.admin_auth import ADS_SCOPE, LICENCES_SCOPE, issue_dev_admin_token

        scope = LICENCES_SCOPE if args.scope == "admin" else ADS_SCOPE
        print(issue_dev_admin_token(settings, args.user, (scope,), args.ttl_s))
        return 0
    from cdn_edge.listener_auth import issue_dev_token

    print(issue_dev_token(settings, args.user, args.tier, args.region, args.ttl_s))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from streamer_app.demo import run_demo

    return run_demo(
        _settings(args),
        Path(args.master) if args.master else None,
        args.no_serve,
        cli=_child_cli(args),
    )


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from streamer.cql.schema import migrate

    settings = _settings(args)
    kwargs = {"replication": args.replication} if args.replication else {}
    applied = migrate(settings, **kwargs)
    _audit(
        settings,
        admin_action(
            AuditAction.SCHEMA_MIGRATED,
            actor=cli_actor(),
            subject=f"keyspace:{settings.cql_keyspace}",
            at_s=time.time(),
            applied=applied,
        ),
    )
    for description in applied:
        print(f"applied migration {description}")
    if not applied:
        print(f"keyspace {settings.cql_keyspace} is up to date")
    return 0


def cmd_plays_recount(args: argparse.Namespace) -> int:
    from streamer.backends import open_session_store
    from streamer.sessions.recount import recent_days, recount_due_days, recount_track

    if args.track and args.due:
        print(
            "streamer: --due is the counts marked due, of every track; not with --track",
            file=sys.stderr,
        )
        return 2
    days = [args.day] if args.day else recent_days(datetime.now(UTC).date())
    settings = _settings(args)
    ledger = open_session_store(settings)
    try:
        if args.track:
            sweep = recount_track(ledger, args.track, days)
        else:
            sweep = recount_due_days(ledger, days)
    finally:
        ledger.close()
    for recount in sweep.recounts:
        if recount.claims or recount.corrected:
            fixed = f" (the count said {recount.counted}; corrected)" if recount.corrected else ""
            print(f"{recount.track_id} {recount.day.isoformat()}: {recount.claims} plays{fixed}")
    for failure in sweep.failures:
        print(f"streamer: cannot recount {failure}", file=sys.stderr)
    span = days[0].isoformat() if len(days) == 1 else f"{days[-1]} to {days[0]}"
    what = f"track {args.track}" if args.track else "the counts marked due"
    _audit(
        settings,
        admin_action(
            AuditAction.PLAYS_RECOUNTED,
            actor=cli_actor(),
            subject=f"track:{args.track}" if args.track else "plays:due",
            at_s=time.time(),
            days=[day.isoformat() for day in days],
            recounted=len(sweep.recounts),
            corrected=len(sweep.corrected),
            failures=len(sweep.failures),
        ),
    )
    print(f"recounted {what} on {span}: {len(sweep.corrected)} corrected")
    return 1 if sweep.failures else 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from streamer.audit.recorders import chain_keys
    from streamer.audit.verify import verify_log
    from streamer.backends import open_audit_log

    settings = _settings(args)
    log = open_audit_log(settings)
    try:
        report = verify_log(log, chain_keys(settings), _micros(args.since))
    finally:
        log.close()
    since = f" since {args.since.isoformat()}" if args.since else ""
    if report.problems:
        for problem in report.problems:
            print(f"broken [{problem.damage}] {problem.message}")
        print(
            f"audit log BROKEN: {len(report.problems)} of {len(report.streams)} streams"
            f" damaged ({report.checked} entries checked{since})"
        )
        return 1
    print(f"audit log intact: {report.checked} entries in {len(report.streams)} streams{since}")
    return 0


def cmd_audit_list(args: argparse.Namespace) -> int:
    from streamer.audit.verify import find_entries
    from streamer.backends import open_audit_log

    log = open_audit_log(_settings(args))
    try:
        entries = find_entries(
            log, action=args.kind, actor=args.actor, since_us=_micros(args.since)
        )
    finally:
        log.close()
    for entry in entries[-args.limit :]:
        event = entry.event
        when = datetime.fromtimestamp(event.at_us / 1e6, UTC).isoformat(timespec="milliseconds")
        if args.json:
            doc = {
                "at": when,
                "action": event.action.value,
                "actor": event.actor,
                "subject": event.subject,
                "details": event.details,
                "stream": entry.stream,
                "seq": entry.seq,
                "event_id": event.event_id,
            }
            print(json.dumps(doc, sort_keys=True))
        else:
            details = json.dumps(event.details, sort_keys=True, separators=(",", ":"))
            print(
                f"{when}  {event.action.value:30} {event.actor:28} {event.subject}  {details}"
                f"  [{entry.stream}#{entry.seq}]"
            )
    return 0


def _micros(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1_000_000)


def _instant(text: str) -> datetime:
    """YYYY-MM-DD (UTC midnight) or an ISO 8601 time; without a zone, UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a day (YYYY-MM-DD) or an ISO 8601 time"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _day(text: str) -> date:
    try:
        if len(text) != 10:  # fromisoformat takes 20231114 too
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day as YYYY-MM-DD") from None


def cmd_bench(args: argparse.Namespace) -> int:
    # A benchmark is a program of its own: run it as one, so the product imports none of it.
    module = f"benchmarks.{args.benchmark}"
    os.execv(sys.executable, [sys.executable, "-m", module, *args.bench_args])


def _hours(text: str) -> float:
    hours = float(text)
    if not 0 <= hours < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of hours, 0 or more; got {text!r}")
    return hours


def _segments_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--segments",
        choices=("auto", "nginx", "python"),
        help="who serves segments: nginx in front of the edge, or the edge alone; default auto "
        "(nginx when nginx and its Lua module are installed) ($STREAMER_SEGMENTS)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamer", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="settings file (TOML); default $STREAMER_CONFIG")
    parser.add_argument("--data-dir", help="embedded data directory; default $STREAMER_DATA_DIR")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="ingest masters (files or directories)")
    ingest.add_argument("paths", nargs="+", metavar="FILE|DIR")
    ingest.add_argument(
        "--track-id", help="track id (only with a single file); default from content"
    )
    ingest.add_argument("--metadata", metavar="FILE.json", help="JSON object stored with the track")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    ingest.add_argument(
        "--kind",
        choices=("track", "ad"),
        default="track",
        help="ad: an ad creative (loudness normalised to -14 LUFS, 2 s segments, never a track);"
        " --track-id is then its ad id",
    )
    ingest.set_defaults(func=cmd_ingest)

    worker = commands.add_parser("worker", help="run an ingest worker on the shared job queue")
    worker.add_argument("--once", action="store_true", help="process at most one job and exit")
    worker.add_argument("--lease-s", type=float, default=60.0, help="job lease length")
    worker.add_argument("--idle-s", type=float, default=1.0, help="poll interval when idle")
    worker.set_defaults(func=cmd_worker)

    logship = commands.add_parser(
        "logship", help="ship nginx's JSON access log into the session store"
    )
    logship.add_argument("--log", required=True, help="the access log nginx writes")
    logship.add_argument(
        "--state", help="position file; default <data dir>/logship/<log name>.position.json"
    )
    logship.add_argument("--once", action="store_true", help="ship what is there, then exit")
    logship.add_argument("--batch-lines", type=int, help="lines per store write")
    logship.add_argument("--metrics-file", help="Prometheus text file, rewritten every 10 s")
    logship.add_argument(
        "--rotate-wait-s",
        type=float,
        default=5.0,
        help="how long a renamed log must be idle before the new one is read",
    )
    logship.set_defaults(func=cmd_logship)

    serve = commands.add_parser("serve", help="run the edge (and, if asked, the ingest API)")
    serve.add_argument("--host", help="listen address; default 127.0.0.1 ($STREAMER_HOST)")
    serve.add_argument("--port", type=int, help="listen port; default 8080 ($STREAMER_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    serve.add_argument("--certfile", help="TLS certificate chain (PEM); enables TLS 1.3")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    _segments_argument(serve)
    serve.add_argument(
        "--ingest",
        dest="serve_ingest",
        action="store_const",
        const=True,
        help="also take ingest: the ingest API and $STREAMER_SERVE_INGEST_WORKERS in-process "
        "workers (default: serve only; $STREAMER_SERVE_INGEST)",
    )
    serve.add_argument(
        "--edge-port",
        type=int,
        default=0,
        help="with nginx: the edge's loopback port behind it; default a free port",
    )
    serve.set_defaults(func=cmd_serve)

    token = commands.add_parser("token", help="print a development token")
    token.add_argument("--user", default="dev-listener")
    token.add_argument("--tier", choices=("free", "premium"), default="premium")
    token.add_argument("--region", default="SE")
    token.add_argument(
        "--scope",
        choices=("listener", "ingest", "analytics", "admin", "ads-admin"),
        default="listener",
    )
    token.add_argument(
        "--all-tracks", action="store_true", help="analytics: every track, not only the user's"
    )
    token.add_argument("--ttl-s", type=int, default=24 * 3600)
    token.set_defaults(func=cmd_token)

    demo = commands.add_parser("demo", help="ingest a sample master, serve it, print the URL")
    demo.add_argument("master", nargs="?", help="a master to ingest instead of the sample")
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--no-serve", action="store_true", help="ingest and print, then exit")
    _segments_argument(demo)
    demo.set_defaults(func=cmd_demo)

    bench = commands.add_parser(
        "bench", help="operator benchmarks (see benchmarks/README.md)", add_help=False
    )
    bench.add_argument("benchmark", choices=BENCHMARKS)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="the benchmark's options")
    bench.set_defaults(func=cmd_bench)

    jobs = commands.add_parser("jobs", help="list recent ingest jobs, or show one")
    jobs.add_argument("job_id", nargs="?")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(func=cmd_jobs)

    db = commands.add_parser("db", help="Scylla/Cassandra schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    migrate = db_commands.add_parser("migrate", help="create or upgrade the CQL schema")
    migrate.add_argument(
        "--replication",
        help="keyspace replication map, e.g. \"{'class': 'NetworkTopologyStrategy', 'dc1': 3}\"",
    )
    migrate.set_defaults(func=cmd_db_migrate)

    objects = commands.add_parser("objects", help="object store maintenance")
    object_commands = objects.add_subparsers(dest="objects_command", required=True)
    cleanup = object_commands.add_parser(
        "cleanup-uploads",
        help="abort multipart uploads a crash abandoned (ingest workers do this hourly)",
    )
    cleanup.add_argument(
        "--older-than",
        type=_hours,
        default=ABANDONED_UPLOAD_AGE.total_seconds() / 3600,
        metavar="HOURS",
        help="only uploads started this long ago; default %(default)g",
    )
    cleanup.set_defaults(func=cmd_cleanup_uploads)
    plays = commands.add_parser("plays", help="royalty play counts")
    plays_commands = plays.add_subparsers(dest="plays_command", required=True)
    recount = plays_commands.add_parser(
        "recount",
        help="repair play counts from the plays claimed",
        description="Set play counts to the number of sessions whose play was counted. "
        "Without --track: the counts the store marks as possibly off; with it: that track's. "
        "Without --day: each of the days a play may still land on, up to today (UTC). "
        "The edge runs the first kind every $STREAMER_PLAY_RECOUNT_INTERVAL_S.",
    )
    recount.add_argument("--track", metavar="ID", help="recount this track (default: the due)")
    when = recount.add_mutually_exclusive_group()
    when.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="only this UTC day")
    when.add_argument(
        "--due", action="store_true", help="the counts marked due (the default without --track)"
    )
    recount.set_defaults(func=cmd_plays_recount)

    keys = commands.add_parser("keys", help="key management")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser("rotate-kek", help="activate a new KEK and re-wrap all keys")
    rotate.set_defaults(func=cmd_rotate_kek)

    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify",
        help="check every stream's hash chain; exit 1 naming the first broken entry",
    )
    verify.add_argument(
        "--since",
        type=_instant,
        metavar="TIME",
        help="check entries from this time on (YYYY-MM-DD or ISO 8601), trusting earlier ones",
    )
    verify.set_defaults(func=cmd_audit_verify)
    listing = audit_commands.add_parser("list", help="list audit entries, oldest first")
    listing.add_argument(
        "--kind",
        type=AuditAction,
        choices=list(AuditAction),
        metavar="ACTION",
        help=f"only this action: {', '.join(a.value for a in AuditAction)}",
    )
    listing.add_argument("--actor", help="only this actor, e.g. listener:u1 or cli:ops@host")
    listing.add_argument("--since", type=_instant, metavar="TIME", help="only from this time on")
    listing.add_argument("--limit", type=int, default=100, help="the newest N; default 100")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_audit_list)

    add_ads_commands(commands, _settings, _day)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        return int(args.func(args))
    except StreamerError as exc:
        print(f"streamer: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
