"""Migration tests: the test database's schema moved to a migration, and back to the latest."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target: list[tuple[str, str]] | None = None):
    """Migrates to `target` (None: the latest); returns the apps of the schema there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target or executor.loader.graph.leaf_nodes())
    return executor.loader.project_state(target).apps
