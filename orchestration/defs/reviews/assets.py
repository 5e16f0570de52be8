"""raw.human_reviews as an observed source: Dagster records when new labels arrived.

Reviews are written outside Dagster (the reviews import, the web queue), so the asset is
observed rather than materialized: each observation's data version changes when labels were
added, which tells the UI (and anyone automating on it) that the agreement marts are stale.
"""

import dagster as dg

from orchestration.lib.resources import EvalhouseResource

HUMAN_REVIEWS = dg.AssetSpec(
    key="human_reviews",
    group_name="reviews",
    description="Human labels on run-log rows (raw.human_reviews); several reviewers per run.",
    kinds={"postgres"},
    metadata={"table": "raw.human_reviews"},
)


@dg.multi_observable_source_asset(specs=[HUMAN_REVIEWS], name="observe_human_reviews")
def human_reviews(evalhouse: EvalhouseResource):
    """Count reviews, reviewed runs and pending queue entries; version = rows + last ingest."""
    with evalhouse.connect() as conn:
        reviews, runs, reviewers, last = conn.execute(
            "select count(*), count(distinct run_id), count(distinct reviewer), max(ingested_at)"
            " from raw.human_reviews"
        ).fetchone()
        queued = conn.execute(
            "select count(*) from raw.review_queue q where not exists"
            " (select 1 from raw.human_reviews r where r.run_id = q.run_id)"
        ).fetchone()[0]
    yield dg.ObserveResult(
        asset_key=HUMAN_REVIEWS.key,
        data_version=dg.DataVersion(f"{reviews}:{last.isoformat() if last else '-'}"),
        metadata={
            "reviews": reviews,
            "reviewed_runs": runs,
            "reviewers": reviewers,
            "queued_unreviewed": queued,
            "last_ingested_at": last.isoformat() if last else "-",
        },
    )
