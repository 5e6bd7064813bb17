"""Alembic environment of the arena database: runs the migrations on the connection that
arena.db.migrate hands over (or on `sqlalchemy.url` when run from the alembic command)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from arena.models import Base

target_metadata = Base.metadata


def run() -> None:
    conn = context.config.attributes.get("connection")
    if conn is None:
        engine = engine_from_config(context.config.get_section(context.config.config_ini_section,
                                                               {}), prefix="sqlalchemy.",
                                    poolclass=pool.NullPool)
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=conn, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


run()
