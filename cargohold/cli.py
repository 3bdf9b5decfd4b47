"""The `cargohold` command: serve, migrate, worker, user administration."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
import time

from cargohold.config import ConfigError, Settings, load_settings
from cargohold.private_files import make_new_files_private, warn_if_exposed

log = logging.getLogger("cargohold")
ALL_WORKERS = "all"


def _settings(args: argparse.Namespace) -> Settings:
    make_new_files_private()
    try:
        settings = load_settings(args.config_dir)
    except ConfigError as exc:
        print(f"cargohold: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    from cargohold import request_log

    request_log.configure(settings.LOG_FORMAT)
    warn_if_exposed(settings, args.config_dir)
    return settings


def _prepare_metrics_dir() -> None:
    """One fresh folder for this server's multi-process metrics, unless the operator named
    one. Runs before anything imports prometheus_client, which reads the variable once."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    path = tempfile.mkdtemp(prefix="cargohold-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(shutil.rmtree, path, True)


def _prepare_schema(settings: Settings, args: argparse.Namespace) -> None:
    """Migrate when asked (by default only the embedded SQLite database); otherwise refuse to
    run on a schema other than this code's, so a new replica never changes it under old ones."""
    from cargohold.db.base import engine_for
    from cargohold.db.migrate import SchemaMismatch, prepare

    migrate = getattr(args, "migrate", None)
    if migrate is None:
        migrate = settings.embedded_database
    engine = engine_for(settings)
    try:
        prepare(engine, migrate=migrate)
    except SchemaMismatch as exc:
        print(f"cargohold: {exc}", file=sys.stderr)
        raise SystemExit(3) from exc
    finally:
        engine.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    args.migrate = True
    _prepare_schema(_settings(args), args)
    print("database is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _prepare_metrics_dir()
    from cargohold import server
    from cargohold.serving import Drain, settle_hostname, tls_files

    started = time.monotonic()
    settings = _settings(args)
    try:
        tls = tls_files(settings, args.config_dir)
    except ConfigError as exc:
        print(f"cargohold: configuration error: {exc}", file=sys.stderr)
        return 2
    configured_port = "SERVER_HOSTNAME" in settings.model_fields_set and (
        settings.SERVER_HOSTNAME.rsplit(":", 1)[-1].isdigit()
    )
    if args.host is None and args.port is None and configured_port:
        port = int(settings.SERVER_HOSTNAME.rsplit(":", 1)[1])
    else:
        port = args.port or (8443 if tls else 8080)
    # Loopback unless told otherwise: exposing the registry is a deliberate choice.
    host = args.host or "127.0.0.1"
    settle_hostname(settings, host, port)
    workers = server.worker_count(args.workers, settings)
    _prepare_schema(settings, args)
    drain = Drain()
    try:
        process = server.Server(
            settings,
            args.config_dir,
            workers=workers,
            run_workers=not args.no_workers,
            drain=drain,
        )
    except ConfigError as exc:
        print(f"cargohold: configuration error: {exc}", file=sys.stderr)
        return 2
    shown_host = f"[{host}]" if ":" in host else host
    scheme = "https" if tls else "http"
    print(
        f"cargohold is serving on {scheme}://{shown_host}:{port}/ as {settings.server_url}"
        f" with {workers} HTTP process{'es' if workers > 1 else ''}"
        f" (ready in {time.monotonic() - started:.1f}s)",
        flush=True,
    )
    print(
        "Create the first account with:  cargohold user create NAME --email E --password P --superuser"
        "  (or POST /api/v1/user/initialize)"
    )
    process.serve(
        host=host,
        port=port,
        log_level=args.log_level,
        access_log=args.access_log,
        tls=tls,
        drain_seconds=settings.SHUTDOWN_DRAIN_SECONDS,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from cargohold.workers.runner import load_workers

    workers = load_workers()
    if args.list:
        width = max(len(name) for name in workers)
        for worker in workers.values():
            print(f"{worker.name:<{width}}  {worker.description}")
        return 0
    if args.name is None:
        print("cargohold: name a worker, `all`, or use --list", file=sys.stderr)
        return 2
    if args.name != ALL_WORKERS and args.name not in workers:
        known = ", ".join([ALL_WORKERS, *workers])
        print(f"cargohold: unknown worker {args.name!r} (known: {known})", file=sys.stderr)
        return 2
    return _run_workers(args, None if args.name == ALL_WORKERS else [args.name])


def _run_workers(args: argparse.Namespace, names: list[str] | None) -> int:
    from cargohold.db.base import engine_for, make_session_factory
    from cargohold.storage import make_store
    from cargohold.workers.runner import WorkerContext, WorkerPool

    settings = _settings(args)
    _prepare_schema(settings, args)
    engine = engine_for(settings)
    context = WorkerContext(settings, make_session_factory(engine), make_store(settings))
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        from cargohold import metrics

        registry = metrics.scrape_registry(context.session_factory)
        start_http_server(args.metrics_port, addr=args.metrics_host, registry=registry)
    pool = WorkerPool(context, names)
    # SIGTERM (systemd, podman stop) stops the loops between units of work, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: context.stopping.set())
    pool.start()
    with contextlib.suppress(KeyboardInterrupt):
        pool.wait()
    pool.stop()
    engine.dispose()
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from cargohold.db.base import engine_for, make_session_factory, utcnow
    from cargohold.domain import accounts, gc
    from cargohold.storage import make_store

    settings = _settings(args)
    _prepare_schema(settings, args)
    engine = engine_for(settings)
    session_factory = make_session_factory(engine)
    now = utcnow()
    try:
        if args.why:
            with session_factory() as session:
                reasons = gc.why(session, args.why, now=now)
            for reason in reasons:
                print(reason)
            if not reasons:
                print(f"nothing keeps {args.why} alive (or it is not stored)")
            return 0
        namespace_id = None
        if args.namespace:
            with session_factory() as session:
                namespace = accounts.get_namespace(session, args.namespace)
                if namespace is None:
                    print(f"cargohold: no namespace {args.namespace!r}", file=sys.stderr)
                    return 1
                namespace_id = namespace.id
        report = gc.run_pass(
            session_factory,
            make_store(settings),
            settings,
            now=now,
            namespace_id=namespace_id,
            dry_run=args.dry_run,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
    finally:
        engine.dispose()
    if args.dry_run:
        for digest in report.manifests:
            print(f"manifest {digest}")
        for digest in report.blobs:
            print(f"blob {digest}")
    print(report.summary())
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    from cargohold.db.base import engine_for, make_session_factory
    from cargohold.domain import accounts

    settings = _settings(args)
    _prepare_schema(settings, args)
    engine = engine_for(settings)
    with make_session_factory(engine)() as session:
        try:
            user = accounts.create_user(
                session,
                settings,
                username=args.name,
                email=args.email,
                password=args.password,
                verified=True,
            )
        except accounts.AccountError as exc:
            print(f"cargohold: {exc}", file=sys.stderr)
            return 1
        user.superuser = args.superuser
        session.commit()
    engine.dispose()
    print(f"created user {args.name}" + (" (superuser)" if args.superuser else ""))
    return 0


def _add_migrate_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--migrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="upgrade the database schema first (default: only for the embedded SQLite database)",
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cargohold", description=__doc__)
    parser.add_argument("--config-dir", default=".", help="folder holding config.yaml")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API, the registry and the workers")
    serve.add_argument("--config-dir", default=argparse.SUPPRESS)
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="HTTP processes (default: SERVER_WORKERS, else one per CPU)",
    )
    serve.add_argument("--no-workers", action="store_true", help="serve HTTP only")
    _add_migrate_flag(serve)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--config-dir", default=argparse.SUPPRESS)
    migrate.set_defaults(handler=cmd_migrate)

    worker = commands.add_parser(
        "worker", help="run one background worker, or all of them, without the HTTP server"
    )
    worker.add_argument("--config-dir", default=argparse.SUPPRESS)
    worker.add_argument("name", nargs="?", help=f"a worker's name, or {ALL_WORKERS!r}")
    worker.add_argument("--list", action="store_true", help="list the workers and exit")
    worker.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port"
    )
    worker.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port")
    worker.set_defaults(handler=cmd_worker)

    collect = commands.add_parser(
        "gc", help="run one garbage-collection pass now (the gc worker does it periodically)"
    )
    collect.add_argument("--config-dir", default=argparse.SUPPRESS)
    collect.add_argument(
        "--dry-run", action="store_true", help="list what would be removed, remove nothing"
    )
    collect.add_argument("--namespace", help="only this user's or organization's repositories")
    collect.add_argument("--why", metavar="DIGEST", help="explain what keeps a digest alive")
    _add_migrate_flag(collect)
    collect.set_defaults(handler=cmd_gc)

    user = commands.add_parser("user", help="user administration")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    create = user_commands.add_parser("create", help="create a user account")
    create.add_argument("--config-dir", default=argparse.SUPPRESS)
    create.add_argument("name")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--superuser", action="store_true")
    _add_migrate_flag(create)
    create.set_defaults(handler=cmd_user_create)
    return parser


# glibc's mallopt parameter number for the arena cap.
_M_ARENA_MAX = -8


def _cap_malloc_arenas() -> None:
    """glibc gives threads that allocate at once arenas of their own, and memory freed in one
    is not handed back to the others: streaming threads then hold tens of MB each. Two arenas
    keep that bounded (an operator's MALLOC_ARENA_MAX wins); HTTP processes inherit it."""
    value = os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    with contextlib.suppress(OSError, AttributeError, ValueError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, int(value))


def main(argv: list[str] | None = None) -> int:
    _cap_malloc_arenas()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
