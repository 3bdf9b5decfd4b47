"""Declarative base, engine and session factory shared by every model module."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from cargohold.db import writers
from cargohold.db.connection_args import translate

if TYPE_CHECKING:
    from cargohold.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored naive in UTC and always handed out timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalize_db_uri(uri: str) -> str:
    """Quay writes postgresql://; we talk to PostgreSQL through psycopg 3."""
    if uri.startswith("postgresql://"):
        return "postgresql+psycopg://" + uri[len("postgresql://") :]
    if uri.startswith("postgres://"):
        return "postgresql+psycopg://" + uri[len("postgres://") :]
    return uri


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def make_engine(
    db_uri: str,
    connect_args: dict | None = None,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> Engine:
    """An engine for DB_URI; connect_args are Quay's DB_CONNECTION_ARGS, translated."""
    url = make_url(normalize_db_uri(db_uri))
    backend = url.get_backend_name()
    options = translate(backend, connect_args or {})
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, **options.connect_args},
            pool_size=pool_size if pool_size is not None else 16,
            max_overflow=max_overflow if max_overflow is not None else 16,
        )
        _configure_sqlite(engine)
        return engine
    if pool_size is None:
        pool_size = options.pool_size if options.pool_size is not None else 10
    return create_engine(
        url,
        connect_args=options.connect_args,
        pool_size=pool_size,
        max_overflow=max_overflow if max_overflow is not None else 20,
        pool_recycle=options.pool_recycle if options.pool_recycle is not None else -1,
        pool_pre_ping=True,
    )


def engine_for(settings: Settings) -> Engine:
    """The engine the settings describe: database, connection arguments and pool."""
    return make_engine(
        settings.DB_URI,
        settings.DB_CONNECTION_ARGS,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_POOL_MAX_OVERFLOW,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def insert_unless_present(postgres: bool, model: Any) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for PostgreSQL or SQLite: a row a unique
    constraint already holds (or a concurrent transaction just committed) is skipped, without
    the savepoint an IntegrityError would need."""
    dialect = postgresql if postgres else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def begin_write(session: Session) -> None:
    """Take SQLite's write lock now, for a transaction that reads and then writes.

    SQLite's deferred transactions fail at once ("database is locked") when a transaction
    that has read tries to write after another writer committed; starting with BEGIN
    IMMEDIATE waits for the lock instead, in line with the other writers (db.writers).
    PostgreSQL needs nothing here.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    if connection.connection.dbapi_connection.in_transaction:
        return
    database = connection.engine.url.database
    if database and database != ":memory:":
        writers.join(session, connection, writers.queue_for(database))
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        writers.leave(session)
        raise
