"""/api/v1/models: the configured models (never a key: only whether its variable is set) and
the last `evalhouse models check` of each (raw.model_checks)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder

from evals.model_checks import LATEST_SQL
from evals.web.deps import state

router = APIRouter(tags=["models"])


@router.get("/models", summary="Configured models and their last connection check")
def list_models(request: Request) -> dict[str, Any]:
    web = state(request)
    config = web.config
    checks = {row["model_name"]: row for row in web.db.rows(LATEST_SQL)}
    models = [
        {
            "name": name,
            "model": cfg.model,
            "provider": cfg.model.split("/", 1)[0],
            "api_key_env": cfg.api_key_env,
            "api_key_set": bool(cfg.api_key()),
            "concurrency": cfg.concurrency,
            "rpm": cfg.rpm,
            "is_judge": name in config.judges,
            "is_default": name == config.default_model,
            "last_check": checks.get(name),
        }
        for name, cfg in sorted(config.models.items())
    ]
    return {"models": jsonable_encoder(web.scrub.value(models))}
