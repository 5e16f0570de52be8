"""Human reviews: observed, not produced — reviewers label runs through `evalhouse reviews import`."""

import dagster as dg

from orchestration.defs.reviews import assets

defs = dg.Definitions(assets=[assets.human_reviews])
