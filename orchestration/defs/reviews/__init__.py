"""Human reviews: observed, not produced — reviewers label runs through `evalhouse reviews import`."""

import dagster as dg

from orchestration.defs.reviews import assets

human_reviews_observation = dg.define_asset_job(
    "human_reviews_observation",
    selection=dg.AssetSelection.assets(assets.human_reviews),
    description="Record how many human labels exist (raw.human_reviews) and when they last changed.",
)

observe_human_reviews_schedule = dg.ScheduleDefinition(
    name="observe_human_reviews_schedule",
    job=human_reviews_observation,
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Observe the reviews daily, half an hour before the nightly drift job.",
)


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[assets.human_reviews],
        jobs=[human_reviews_observation],
        schedules=[observe_human_reviews_schedule],
    )
