from alembic import context

from core.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through core.migrations.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
