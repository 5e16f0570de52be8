"""evalhouse.yaml: the user's configuration, validated by pydantic.

Unknown keys and wrong types are errors that name the file and the key path (or the YAML line),
so a typo never silently falls back to a default. Secrets are never read from this file: a model
names the environment variable that holds its key (`api_key_env`), and webhooks may do the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from evals.redact import register_secret_env

CONFIG_ENV = "EVALHOUSE_CONFIG"
DEFAULT_CONFIG = "evalhouse.yaml"


class ConfigError(ValueError):
    """evalhouse.yaml is missing, unparsable or invalid; the message names file and key path."""


class MissingCredentialError(ConfigError):
    """A model to be called names an `api_key_env` that is not set."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseConfig(_Strict):
    home: str | None = Field(None, description="Embedded Postgres data dir (else EVALHOUSE_HOME).")
    url_env: str = Field("EVALHOUSE_DATABASE_URL", description="Env var holding an external URL.")


class ModelConfig(_Strict):
    """One model reachable through LiteLLM."""

    model: str = Field(description="LiteLLM model string, e.g. openai/gpt-4o-mini.")
    params: dict[str, object] = Field(default_factory=dict)
    api_base: str | None = None
    api_key_env: str | None = Field(None, description="Env var holding the API key.")
    input_cost_per_token: float | None = Field(None, ge=0)
    output_cost_per_token: float | None = Field(None, ge=0)
    concurrency: int = Field(16, ge=1, le=4096)
    rpm: int | None = Field(None, ge=1, description="Requests per minute cap.")
    timeout_s: float = Field(60.0, gt=0, description="Per-attempt timeout.")
    deadline_s: float = Field(
        180.0, gt=0, description="Hard deadline for a call, retries included."
    )
    max_attempts: int = Field(4, ge=1, le=20)
    json_mode: bool = Field(True, description="Ask for a JSON object (response_format).")
    family: str | None = Field(None, description="Lineage: the model family across checkpoints.")
    checkpoint: str | None = Field(None, description="Lineage: this checkpoint's name.")
    step: int | None = Field(None, ge=0, description="Lineage: training step (orders a family).")
    owner: str | None = Field(None, description="Who answers for this model.")
    tags: list[str] = Field(default_factory=list)

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def prices(self) -> tuple[float, float] | None:
        """(input, output) USD per token when the config gives either (the other is then 0);
        None leaves pricing to LiteLLM's price map."""
        if self.input_cost_per_token is None and self.output_cost_per_token is None:
            return None
        return self.input_cost_per_token or 0.0, self.output_cost_per_token or 0.0

    def missing_key_env(self) -> str | None:
        """The `api_key_env` variable when it is named but unset or empty.

        Calling such a model anyway would let LiteLLM fall back to its provider's default
        variable (OPENAI_API_KEY, ...): another team's key, sent without a word.
        """
        return self.api_key_env if self.api_key_env and not self.api_key() else None


class SimStageConfig(_Strict):
    accuracy: float = Field(0.85, ge=0, le=1)
    pass_bias: float = Field(0.0, ge=-1, le=1, description="Shift of the pass probability.")


class SimModelConfig(SimStageConfig):
    """A simulated model; as a pairwise judge it also has a position bias, or a fixed rule."""

    position_bias: float = Field(
        0.0, ge=0, le=1, description="Pairwise judge: P(it names the first slot, whatever)."
    )
    prefer: Literal["truth", "longer"] = Field(
        "truth", description="Pairwise judge: the simulated truth, or always the longer answer."
    )


class SimPairwiseConfig(_Strict):
    """The true preferences the simulated pairwise judges see (docs/pairwise.md)."""

    ratings: dict[str, float] = Field(
        default_factory=dict,
        description="Contestant label -> Bradley-Terry rating (Elo scale) for generated pairs.",
    )
    tie_rate: float = Field(0.0, ge=0, le=1, description="P(a rated pair is truly a tie).")


class SimDriftConfig(_Strict):
    stage: str
    start: date
    pass_shift: float = Field(ge=-1, le=1)


class SimulatorConfig(_Strict):
    """Settings of the offline simulated provider (evals/simulated.py owns its model prefix)."""

    seed: int = 7
    latency_ms_median: float = Field(900.0, gt=0)
    latency_sigma: float = Field(0.35, ge=0)
    error_rate: float = Field(0.01, ge=0, le=1)
    rate_limit_rate: float = Field(0.01, ge=0, le=1)
    timeout_rate: float = Field(0.0, ge=0, le=1)
    malformed_rate: float = Field(0.01, ge=0, le=1)
    input_cost_per_token: float = Field(0.15e-6, ge=0)
    output_cost_per_token: float = Field(0.6e-6, ge=0)
    time_scale: float = Field(0.0, ge=0, description="Multiply simulated latency (0: no sleep).")
    stages: dict[str, SimStageConfig] = Field(default_factory=dict)
    models: dict[str, SimModelConfig] = Field(
        default_factory=dict, description="Per simulated model: accuracy and pass bias."
    )
    pairwise: SimPairwiseConfig = SimPairwiseConfig()
    drift: list[SimDriftConfig] = Field(default_factory=list)


class SuiteConfig(_Strict):
    path: str
    judge: str | None = None


class StageBand(_Strict):
    too_easy_above: float = Field(0.95, ge=0, le=1)
    stalling_below: float = Field(0.35, ge=0, le=1)


class SamplingConfig(_Strict):
    per_stage_per_day: int = Field(20, ge=1)
    review_share: float = Field(0.25, ge=0, le=1)
    seed: int = 11


class DriftConfig(_Strict):
    """Thresholds of the nightly drift checks (the detectors live in evals/drift/).

    The `*_false_alarm_rate` fields are each alert kind's share of the budget of one false alert
    per 30 quiet nights; docs/drift-detection.md ("Calibration") lists the shares and measures
    what each kind spends.
    """

    schedule: str = Field("0 2 * * *", description="Cron of the nightly drift job (UTC).")
    baseline_days: int = Field(
        14, ge=1, description="Trailing days a recent window is compared to."
    )
    min_baseline_days: int = Field(3, ge=1, description="Fewer baseline days: no comparison yet.")
    nightly_false_alarm_rate: float = Field(
        0.025,
        gt=0,
        lt=1,
        description="Expected false pass-rate-shift alarms per night, all stages together.",
    )
    version_change_false_alarm_rate: float = Field(
        0.02,
        gt=0,
        lt=1,
        description=(
            "Chance that a rollout which moves nothing raises a version-change alert, "
            "all stages together."
        ),
    )
    band_false_alarm_rate: float = Field(
        0.001,
        gt=0,
        lt=1,
        description="Expected false too-easy/stalling findings per night, all stages together.",
    )
    agreement_false_alarm_rate: float = Field(
        0.001,
        gt=0,
        lt=1,
        description="Expected false agreement findings per night, all judge series together.",
    )
    spike_false_alarm_rate: float = Field(
        0.0005,
        gt=0,
        lt=1,
        description="Expected false spikes per night and per kind (cost, latency), all series.",
    )
    detect_shift: float = Field(
        0.10, gt=0, lt=1, description="Pass-rate shift the detector is sized for (critical at it)."
    )
    min_window_n: int = Field(
        400, ge=1, description="Rows the recent window pools (newest nights first) before testing."
    )
    max_window_days: int = Field(7, ge=1)
    min_daily_n: int = Field(30, ge=1, description="Newest night with fewer rows: not tested.")
    band_window_days: int = Field(7, ge=1, description="Days pooled for the band checks.")
    min_agreement: float = Field(0.7, ge=0, le=1)
    agreement_window_days: int = Field(7, ge=1, description="Days of reviews pooled for agreement.")
    max_golden_accuracy_drop: float = Field(0.05, ge=0, le=1)
    golden_nightly_false_alarm_rate: float = Field(
        0.005,
        gt=0,
        lt=1,
        description=(
            "Family-wise error rate of a night's golden regression tests, all model × suite "
            "pairs together (Holm); bounds the expected false golden alarms per night."
        ),
    )
    golden_critical_drop: float = Field(
        0.10, ge=0, le=1, description="A golden regression this large (and strong) is critical."
    )
    cost_spike_ratio: float = Field(1.5, gt=1)
    cost_spike_min_abs_usd: float = Field(
        0.00005, ge=0, description="Cost per call must also rise by at least this much."
    )
    latency_spike_ratio: float = Field(1.5, gt=1)
    latency_spike_min_abs_ms: float = Field(
        200.0, ge=0, description="Latency must also rise by at least this much."
    )
    max_parse_error_rate: float = Field(0.05, ge=0, le=1)
    max_error_rate: float = Field(0.10, ge=0, le=1)
    pairwise_max_position_bias: float = Field(
        0.75,
        ge=0.5,
        le=1,
        description=(
            "Share of a pairwise judge's inconsistent pairs that favour the first slot (0.5 = "
            "no bias): alert when its interval's lower end passes this."
        ),
    )
    pairwise_max_inconsistency: float = Field(
        0.35,
        ge=0,
        le=1,
        description=(
            "Share of pairs judged in both orders whose verdicts differ: alert when its "
            "interval's lower end passes this."
        ),
    )
    pairwise_min_pairs: int = Field(
        20, ge=1, description="A judge cohort with fewer pairs judged in both orders: not assessed."
    )
    pairwise_min_inconsistent_pairs: int = Field(
        10,
        ge=1,
        description=(
            "Position bias is a share of the inconsistent pairs: with fewer, it is not assessed "
            "(one pair makes it 0 or 1, and a resampled interval of one pair is a point)."
        ),
    )
    default_band: StageBand = StageBand()
    stage_bands: dict[str, StageBand] = Field(default_factory=dict)


class WebhookConfig(_Strict):
    name: str
    url: str | None = None
    url_env: str | None = Field(None, description="Env var holding the URL (it may embed a token).")
    timeout_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _one_target(self) -> WebhookConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url or url_env")
        return self

    def resolved_url(self) -> str | None:
        return self.url if self.url is not None else os.environ.get(self.url_env or "")


class AlertsConfig(_Strict):
    base_url: str = "http://127.0.0.1:8000"
    dagster_url: str = "http://127.0.0.1:3000"
    webhooks: list[WebhookConfig] = Field(default_factory=list)


class CaptureConfig(_Strict):
    touchpoint: str = "app"
    batch_size: int = Field(500, ge=1)
    flush_interval_s: float = Field(0.5, gt=0)
    spool_dir: str | None = None
    redact_pii: list[Literal["email", "phone"]] = Field(
        default_factory=lambda: ["email", "phone"],
        description="Personal data replaced at capture, before a row is stored ([] for none).",
    )
    redact_patterns: list[str] = Field(
        default_factory=list,
        description="Regular expressions of your own; every match is replaced at capture.",
    )

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns


class WebConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token_env: str = "EVALHOUSE_WEB_TOKEN"
    role: str = Field("evalhouse_web", description="Least-privilege role the app connects as.")
    database_url_env: str = Field(
        "EVALHOUSE_WEB_DATABASE_URL",
        description="Env var with a full URL for the app's role (else the warehouse URL as `role`).",
    )


class ApiConfig(_Strict):
    """The JSON API's limits (docs/api.md): per token, in this server process."""

    rate_per_minute: int = Field(1200, ge=1, description="Sustained requests per minute a token.")
    batch_runner: Literal["auto", "dagster", "server"] = Field(
        "auto",
        description="Who runs POST /api/v1/batches: a Dagster run where the webserver at "
        "alerts.dagster_url serves the code location (auto: else the server), or the server.",
    )
    burst: int = Field(100, ge=1, description="Requests a token may make at once beyond the rate.")
    max_body_bytes: int = Field(
        8_000_000, ge=1024, description="Larger request bodies are refused (413)."
    )
    max_runs_per_request: int = Field(
        1000, ge=1, description="More run records in one POST are refused (413)."
    )


class GateConfig(_Strict):
    """Release-gate criteria (evals/gate/); `evalhouse gate --config gate.yaml` overrides them."""

    non_inferiority_margin: float = Field(
        0.05,
        gt=0,
        le=1,
        description=(
            "The candidate may be at most this much less accurate. 0.05 suits golden sets of "
            "tens to hundreds of items; 0.02 needs about 2,000 (docs/release-gate.md)."
        ),
    )
    stage_margin: float = Field(
        0.10, ge=0, le=1, description="Default per-stage regression margin."
    )
    stage_margins: dict[str, float] = Field(
        default_factory=dict, description="Per-stage margins overriding stage_margin."
    )
    min_stage_items: int = Field(
        5, ge=1, description="Fewer paired items: the stage is unassessed."
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Two-sided level of McNemar tests and CIs.")
    power: float = Field(0.8, gt=0, lt=1, description="Power the suite must give the NI test.")
    min_items: int = Field(30, ge=1)
    min_discordant: int = Field(10, ge=0)
    max_latency_p95_ms: float | None = Field(None, gt=0)
    max_latency_p95_ratio: float | None = Field(None, gt=0, description="Candidate / baseline p95.")
    max_cost_per_item_usd: float | None = Field(None, ge=0)
    max_cost_per_item_ratio: float | None = Field(None, gt=0, description="Candidate / baseline.")
    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_parse_error_rate: float = Field(0.05, ge=0, le=1)
    safety_category: str | None = Field("safety", description="Category that must not regress.")
    bootstrap_samples: int = Field(2000, ge=100)
    seed: int = 20
    report_items: int = Field(20, ge=0, description="Most affected items listed in the report.")
    pairwise_min_win_rate: float = Field(
        0.45,
        ge=0,
        le=1,
        description=(
            "Pairwise gate (`--judge`): the candidate's win rate over the baseline (ties half, "
            "items weighted equally) may not be below this; its interval's lower end must clear it."
        ),
    )
    pairwise_max_loss_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Pairwise gate: most share of items the judge prefers the baseline on.",
    )


class PairwiseConfig(_Strict):
    """The pairwise comparison the nightly job runs (docs/pairwise.md); absent: none."""

    suite: str = Field(description="A configured suite name or a suite file.")
    judge: str
    baseline: str | None = Field(None, description="MODEL[@PROMPT]: answers when items have none.")
    candidate: str | None = Field(None, description="MODEL[@PROMPT], the other side.")
    orders: Literal[1, 2] = Field(2, description="2: each pair judged in both orders.")
    trials: int = Field(1, ge=1, le=100)


class Config(_Strict):
    warehouse: WarehouseConfig = WarehouseConfig()
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    default_model: str | None = None
    judges: list[str] = Field(default_factory=list, description="Model names used as judges.")
    reference_judge: str | None = None
    suites: dict[str, SuiteConfig] = Field(default_factory=dict)
    golden_slices: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Shards of each suite's items (by item hash) per candidate model in the nightly "
            "golden runs: each is a step an executor may run in another process or machine."
        ),
    )
    golden_processes: int | None = Field(
        None,
        ge=1,
        le=64,
        description=(
            "Worker processes each golden-runs step spreads its calls over, sharing the models' "
            "limits (`evalhouse run --processes`); unset: one per 64 calls in flight, within "
            "the cores."
        ),
    )
    shared_limits: Literal["run", "warehouse"] = Field(
        "run",
        description=(
            "Who shares a model's concurrency and rpm: `run` (the processes of one run), "
            "`warehouse` (every run and Dagster step on this warehouse, evals.warehouse_limits)."
        ),
    )
    custom_providers: list[Annotated[str, Field(pattern=r"^[\w.]+:\w+$")]] = Field(
        default_factory=lambda: ["evals.simulated:register"],
        description=(
            "`module:function`s called with the config to install LiteLLM custom providers "
            "before the first call; the default installs the offline simulator (evals.simulated)."
        ),
    )
    simulator: SimulatorConfig = SimulatorConfig()
    sampling: SamplingConfig = SamplingConfig()
    drift: DriftConfig = DriftConfig()
    alerts: AlertsConfig = AlertsConfig()
    capture: CaptureConfig = CaptureConfig()
    web: WebConfig = WebConfig()
    api: ApiConfig = ApiConfig()
    gate: GateConfig = GateConfig()
    pairwise: PairwiseConfig | None = None
    retention: dict[str, Annotated[int, Field(ge=1)] | Literal["forever"]] = Field(
        default_factory=dict,
        description=(
            "Days each run-log source is kept (by started_at), or `forever`; a source not "
            "named is kept forever. Applied nightly and by `evalhouse retention apply`."
        ),
    )

    source_path: Annotated[Path | None, Field(exclude=True)] = None

    @field_validator("retention")
    @classmethod
    def _retention_names_sources(cls, retention: dict[str, int | str]) -> dict[str, int | str]:
        from evals.runlog import SOURCES

        for source in retention:
            if source not in SOURCES:
                raise ValueError(f"{source!r} is not a run-log source ({', '.join(SOURCES)})")
        return retention

    @model_validator(mode="after")
    def _references_exist(self) -> Config:
        names = set(self.models)
        for key, value in (
            ("default_model", self.default_model),
            ("reference_judge", self.reference_judge),
        ):
            if value is not None and value not in names:
                raise ValueError(f"{key}: model {value!r} is not defined under models")
        for judge in self.judges:
            if judge not in names:
                raise ValueError(f"judges: model {judge!r} is not defined under models")
        for suite_name, suite in self.suites.items():
            if suite.judge is not None and suite.judge not in names:
                raise ValueError(f"suites.{suite_name}.judge: model {suite.judge!r} is not defined")
        if self.pairwise is not None:
            for key in ("judge", "baseline", "candidate"):
                value = getattr(self.pairwise, key)
                if value is not None and value.partition("@")[0] not in names:
                    raise ValueError(f"pairwise.{key}: model {value!r} is not defined under models")
        return self

    @model_validator(mode="after")
    def _register_secret_variables(self) -> Config:
        register_secret_env(
            [model.api_key_env for model in self.models.values() if model.api_key_env]
            + [hook.url_env for hook in self.alerts.webhooks if hook.url_env]
        )
        return self

    def missing_credentials(self, names: Iterable[str] | None = None) -> list[str]:
        """One line per model (all configured ones by default) whose key variable is unset."""
        problems = []
        for name in self.models if names is None else names:
            variable = self.model(name).missing_key_env()
            if variable is not None:
                problems.append(
                    f"models.{name}.api_key_env: environment variable {variable} is not set"
                    " (evalhouse never falls back to another key)"
                )
        return problems

    def require_credentials(self, *names: str) -> None:
        """Raise MissingCredentialError before any call when a model to be called has no key."""
        problems = self.missing_credentials(names)
        if problems:
            raise MissingCredentialError("\n".join(problems))

    def model(self, name: str) -> ModelConfig:
        """A configured model by name; a bare LiteLLM string is accepted too."""
        if name in self.models:
            return self.models[name]
        if "/" in name:
            return ModelConfig(model=name)
        raise ConfigError(
            f"unknown model {name!r}: define it under `models:` in {self.source_path}"
        )

    def resolve_path(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        base = self.source_path.parent if self.source_path else Path.cwd()
        return (base / path).resolve()


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)).expanduser().resolve()


def validation_problems(error: ValidationError) -> str:
    """A pydantic error as indented `location: message` lines for a person editing YAML."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


def _format_validation_error(path: Path, error: ValidationError) -> str:
    return f"{path}: invalid configuration\n{validation_problems(error)}"


def load_config(path: Path | str | None = None) -> Config:
    """Load and validate evalhouse.yaml; a missing default file means all defaults."""
    explicit = path is not None or CONFIG_ENV in os.environ
    path = Path(path).expanduser().resolve() if path is not None else config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: no such configuration file")
        return Config()
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: broken YAML: {problem}") from None
    except ValueError as exc:  # e.g. an integer of 5,000 digits (Python's int limit)
        raise ConfigError(f"{path}: unreadable value: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    if "source_path" in data:
        raise ConfigError(f"{path}: invalid configuration\n  source_path: unknown key")
    try:
        return Config.model_validate({**data, "source_path": path})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc)) from None
