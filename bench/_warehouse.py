"""The warehouse a benchmark writes to: $EVALHOUSE_DATABASE_URL, else a throwaway embedded one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from evals import warehouse


@contextmanager
def bench_warehouse() -> Iterator[None]:
    """Migrate the warehouse in use; a throwaway embedded server is stopped and removed after.

    The embedded server is detached by design (it outlives whoever started it), so a benchmark
    that starts one must stop it, or every run leaves a server behind.
    """
    if os.environ.get(warehouse.URL_ENV):
        warehouse.migrate()
        yield
        return
    os.environ[warehouse.HOME_ENV] = home = tempfile.mkdtemp(prefix="evalhouse-bench-")
    server = warehouse.embedded_server()
    try:
        server.ensure_running()
        warehouse.migrate()
        yield
    finally:
        warehouse.engine().dispose()
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
