"""Alembic environment: runs on the connection handed over by :func:`rag.db.migrate`, or on
``sqlalchemy.url`` when invoked from the ``alembic`` command line."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from rag.db import Base

config = context.config
target_metadata = Base.metadata

connection = config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:  # pragma: no cover - CLI use
    engine = engine_from_config(config.get_section(config.config_ini_section) or {},
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
