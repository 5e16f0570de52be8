"""`evalhouse demo`: the main job end to end on the embedded default."""

from evals import warehouse
from evals.cli._common import console


def demo() -> None:
    """Start the warehouse, migrate it, and report what was done."""
    status = warehouse.embedded_server().ensure_running() if warehouse.uses_embedded() else None
    if status is not None:
        console.print(f"[bold]warehouse[/]: embedded Postgres {status.describe()}")
    console.print(f"[bold]schema[/]: revision {warehouse.migrate()}")
    console.print(f"[bold]url[/]: {warehouse.database_url()}")
