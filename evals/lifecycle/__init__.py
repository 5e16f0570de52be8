"""The data lifecycle: production rows hold learners' work, so evalhouse can let them go.

- `forget`: one subject erased everywhere it lives, marts rebuilt, the erasure audited;
- `retention`: each source kept for the days evalhouse.yaml gives it, nightly and on demand;
- `audit`: raw.data_erasures, the record of both, without what was erased.

Redaction at capture, which keeps personal data out in the first place, is `evals.redact`.
See docs/data-lifecycle.md.
"""

import getpass
import os


def requester() -> str:
    """Who asks for an erasure when nobody says: the OS user (audit rows always name someone)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"
