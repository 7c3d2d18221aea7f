"""The API's request and answer bodies as pydantic models: FastAPI validates requests with
them and writes the OpenAPI document from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

__all__ = [
    "CancelAnswer", "DefaultRequest", "ErrorBody", "ErrorDetail", "OutputRef", "PipelineDetail",
    "PipelineSummary", "PipelineVersion", "RunDetail", "RunSummary", "Schedule",
    "ScheduleFiring", "ScheduleRequest", "StepDetail", "Trigger", "TriggerAnswer",
    "TriggerRequest",
]


class ErrorDetail(BaseModel):
    """What went wrong: a stable code and a message for people."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: ErrorDetail


class PipelineSummary(BaseModel):
    """A published pipeline in a listing."""

    name: str
    description: str
    default_version: int | None
    versions: list[int]
    enabled: bool


class PipelineVersion(BaseModel):
    """One published version; ``parameters`` is the JSON Schema of its parameters."""

    version: int
    digest: str
    description: str = ""
    created: str = ""
    pipeline: str | None = Field(None, description="the pipeline function's qualified name")
    ductwork_version: str | None = None
    python_version: str | None = None
    parameters: dict[str, Any]


class PipelineDetail(PipelineSummary):
    """A published pipeline with each of its versions, oldest first."""

    records: list[PipelineVersion]


class TriggerRequest(BaseModel):
    """Start a run: parameters by name, and the version (default: the pipeline's default)."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    version: StrictInt | None = None


class TriggerAnswer(BaseModel):
    """A queued run."""

    run_id: str
    status: Literal["queued"]
    version: int


class DefaultRequest(BaseModel):
    """The version that runs when a trigger names none."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt


class Trigger(BaseModel):
    """How a run was started: over the API (with the token's name), by a schedule (with its
    name), or elsewhere."""

    via: Literal["api", "cli", "schedule"]
    token: str | None = None
    schedule: str | None = None


class RunSummary(BaseModel):
    """A run in a listing; times are Unix seconds."""

    run_id: str
    pipeline: str
    version: int | None
    status: str
    submitted: float | None
    started: float | None
    finished: float | None
    duration: float | None
    trigger: Trigger


class OutputRef(BaseModel):
    """A stored output: its content digest, how it is serialized, its size and types."""

    digest: str
    serializer: str
    size: int
    types: list[str]


class StepDetail(BaseModel):
    """One step of a run."""

    id: str
    step: str
    status: str
    cached: bool
    #: The run whose execution made a cached step's outputs (None: it ran, or unknown).
    cached_from: str | None = None
    attempts: int | None
    started: float | None
    finished: float | None
    duration: float | None
    metrics: dict[str, Any]
    outputs: dict[str, OutputRef]
    error: str | None
    note: str | None


class RunDetail(RunSummary):
    """One run: its parameters, an error if it could not start, and its steps."""

    parameters: dict[str, Any]
    backend: str | None
    error: str | None
    steps: list[StepDetail]


class CancelAnswer(BaseModel):
    """A cancel taken: ``cancelled`` (it was queued) or ``cancelling`` (it was running)."""

    run_id: str
    status: Literal["cancelled", "cancelling"]


class ScheduleRequest(BaseModel):
    """Make a schedule: a published pipeline run by ``cron`` (in ``timezone``) or when the
    files ``on_change`` names change (looked at every ``interval`` seconds)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pipeline: str
    version: StrictInt | None = Field(None, description="pinned version (default: the "
                                                        "pipeline's default when it fires)")
    cron: str | None = Field(None, description="5 fields, or 6 with seconds last")
    timezone: str = Field("UTC", description="IANA time zone the cron is read in")
    on_change: str | None = Field(None, description="DATASTORE:PATH_OR_GLOB (nothing "
                                                    "before ':' for the store's own)")
    interval: float = Field(60.0, description="seconds between looks at on_change's files")
    parameters: dict[str, Any] = Field(default_factory=dict)
    catch_up: bool = Field(False, description="after downtime, run the last time missed")
    overlap: Literal["skip", "queue"] = Field(
        "skip", description="when the previous run still goes: skip, or queue behind it")


class ScheduleFiring(BaseModel):
    """One time a schedule came due: what happened and why."""

    key: str
    time: str = Field(description="when it came due (ISO 8601, UTC)")
    outcome: Literal["fired", "skipped", "waiting"]
    reason: str | None = None
    run_id: str | None = None
    version: int | None = None
    catch_up: bool = False
    fingerprint: str | None = None


class Schedule(BaseModel):
    """A schedule, when it fires next, why it would not, and its newest firings first."""

    name: str
    pipeline: str
    version: int | None
    parameters: dict[str, Any]
    cron: str | None
    timezone: str | None
    on_change: str | None
    interval: float | None
    catch_up: bool
    overlap: Literal["skip", "queue"]
    enabled: bool
    created: float
    next_fire: str | None = Field(description="ISO 8601, UTC; null for a data trigger or a "
                                              "schedule that would not fire")
    blocked: str | None = Field(description="why it would not fire now, if so")
    firings: list[ScheduleFiring]
