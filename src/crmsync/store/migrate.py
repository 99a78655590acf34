"""Alembic, configured in code: the migrations ship inside the package, no alembic.ini needed.

To write a new migration against a scratch database:
``alembic.command.revision(alembic_config("sqlite:///scratch.db"), "what", autogenerate=True)``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from crmsync.store.engine import WRITE

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x63726D73796E63  # "crmsync": the advisory lock held while migrating


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations, optionally for a database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema, in one transaction; a no-op when it is there."""
    config = alembic_config()
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                # Two processes opening a new database at once: one migrates, one waits.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
