"""The `cargohold` command: serve, migrate, worker, user administration."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

from cargohold.config import ConfigError, Settings, load_settings
from cargohold.private_files import make_new_files_private, warn_if_exposed

log = logging.getLogger("cargohold")


def _settings(args: argparse.Namespace) -> Settings:
    make_new_files_private()
    try:
        settings = load_settings(args.config_dir)
    except ConfigError as exc:
        print(f"cargohold: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    warn_if_exposed(settings, args.config_dir)
    return settings


def _migrate(settings: Settings) -> None:
    from cargohold.db.base import make_engine
    from cargohold.db.migrate import upgrade

    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    _migrate(_settings(args))
    print("database is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cargohold import server

    started = time.monotonic()
    settings = _settings(args)
    if args.host is None and args.port is None and ":" in settings.SERVER_HOSTNAME:
        port = int(settings.SERVER_HOSTNAME.rsplit(":", 1)[1])
    else:
        port = args.port or 8080
    # Loopback unless told otherwise: exposing the registry is a deliberate choice.
    host = args.host or "127.0.0.1"
    workers = server.worker_count(args.workers, settings)
    _migrate(settings)
    shown_host = f"[{host}]" if ":" in host else host
    try:
        process = server.Server(
            settings, args.config_dir, workers=workers, run_workers=not args.no_workers
        )
    except ConfigError as exc:
        print(f"cargohold: configuration error: {exc}", file=sys.stderr)
        return 2
    print(
        f"cargohold is serving on http://{shown_host}:{port}/ with {workers} HTTP "
        f"process{'es' if workers > 1 else ''} (ready in {time.monotonic() - started:.1f}s)",
        flush=True,
    )
    print(
        "Create the first account with:  cargohold user create NAME --email E --password P --superuser"
        "  (or POST /api/v1/user/initialize)"
    )
    process.serve(host=host, port=port, log_level=args.log_level, access_log=args.access_log)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from cargohold.db.base import make_engine, make_session_factory
    from cargohold.storage import make_store
    from cargohold.workers.runner import WorkerContext, load_workers, run_loop

    settings = _settings(args)
    workers = load_workers()
    if args.name not in workers:
        known = ", ".join(sorted(workers)) or "none"
        print(f"cargohold: unknown worker {args.name!r} (known: {known})", file=sys.stderr)
        return 2
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    context = WorkerContext(settings, make_session_factory(engine), make_store(settings))
    try:
        run_loop(args.name, workers[args.name], context)
    except KeyboardInterrupt:
        context.stopping.set()
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from cargohold.db.base import make_engine, make_session_factory, utcnow
    from cargohold.domain import accounts, gc
    from cargohold.storage import make_store

    settings = _settings(args)
    _migrate(settings)
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
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
    from cargohold.db.base import make_engine, make_session_factory
    from cargohold.domain import accounts

    settings = _settings(args)
    _migrate(settings)
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    with make_session_factory(engine)() as session:
        try:
            accounts.create_user(
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
        session.commit()
    print(f"created user {args.name}")
    if args.superuser and args.name not in settings.SUPER_USERS:
        path = add_superuser_to_config(args.config_dir, args.name)
        print(f"added {args.name} to SUPER_USERS in {path} (restart a running server to apply)")
    return 0


def add_superuser_to_config(config_dir: str, username: str) -> Path:
    """Superusers are configuration in Quay; keep it that way and write the file for the admin."""
    path = Path(config_dir) / "config.yaml"
    data = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    names = list(data.get("SUPER_USERS") or [])
    if username not in names:
        names.append(username)
    data["SUPER_USERS"] = names
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


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
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--config-dir", default=argparse.SUPPRESS)
    migrate.set_defaults(handler=cmd_migrate)

    worker = commands.add_parser("worker", help="run one background worker alone")
    worker.add_argument("--config-dir", default=argparse.SUPPRESS)
    worker.add_argument("name")
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
    collect.set_defaults(handler=cmd_gc)

    user = commands.add_parser("user", help="user administration")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    create = user_commands.add_parser("create", help="create a user account")
    create.add_argument("--config-dir", default=argparse.SUPPRESS)
    create.add_argument("name")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--superuser", action="store_true")
    create.set_defaults(handler=cmd_user_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
