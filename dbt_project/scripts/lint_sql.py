"""sqlfluff (dbt templater, settings in .sqlfluff) over the dbt models, on the warehouse in use.

The templater compiles each model with dbt, and compiling asks the warehouse whether an
incremental model's table exists (`is_incremental()`), so dbt needs the connection that
`evals.dbt.dbt_env()` supplies to every dbt invocation (the embedded Postgres by default).

    .venv/bin/python dbt_project/scripts/lint_sql.py [sqlfluff lint arguments; default: the models]
"""

from __future__ import annotations

import os
import sys

from sqlfluff.cli.commands import cli

from evals.dbt import DBT_PROJECT_DIR, dbt_env


def main() -> None:
    os.environ.update(dbt_env())
    args = sys.argv[1:] or [str(DBT_PROJECT_DIR / "models")]
    cli.main(["lint", *args])


if __name__ == "__main__":
    main()
