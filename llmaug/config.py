"""Run settings: one validated object, merged from built-in defaults < config file < flags.

Mirrors RecBole's layered ``Config`` so a RecBole user knows where a value came from.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .errors import ConfigError

TASK_NAMES = ("edges", "users", "items")


class FieldRoles(BaseModel):
    """Which dataset columns play which role; the defaults fit RecBole's ml-100k."""

    model_config = ConfigDict(extra="forbid")

    title: str
    year: Optional[str] = None
    genre: Optional[str] = None
    item_text: list[str] = Field(default_factory=list)
    user_demographics: list[str] = Field(default_factory=list)


class Settings(BaseModel):
    """Everything one ``llmaug augment`` run depends on."""

    model_config = ConfigDict(extra="forbid")

    domain: str
    fields: FieldRoles
    item_attributes: list[str]
    user_profile: list[str]
    split: list[float]
    split_method: Literal["ratio", "leave_one_out"]
    split_order: Literal["random", "time"]
    label_threshold: float
    seed: int
    train_fraction: float = Field(gt=0, le=1)
    candidate_model: str
    candidates: int = Field(ge=2)
    candidate_epochs: int = Field(ge=1)
    candidate_config: dict[str, Any]
    candidate_order: Literal["shuffled", "ranked"]
    votes: int = Field(ge=1, le=25)
    min_agreement: float = Field(ge=0, le=1)
    tasks: list[str]
    model: str
    embedding_model: str
    embedding_batch_size: int = Field(ge=1)
    embedding_precision: Literal["auto", "float32", "bfloat16"]
    limit_users: Optional[int] = Field(default=None, ge=1)
    limit_items: Optional[int] = Field(default=None, ge=1)
    history_items: int = Field(ge=1)
    chunk_size: int = Field(ge=1)
    api_base: Optional[str] = None
    temperature: float = Field(ge=0, le=2)
    top_p: float = Field(ge=0, le=1)
    max_tokens: int = Field(ge=1)
    timeout: Optional[float] = Field(default=None, gt=0)
    concurrency: Optional[int] = Field(default=None, ge=1, le=1024)
    structured_output: Literal["auto", "json_schema", "json_object", "off"]
    num_retries: int = Field(ge=0)
    max_reasks: int = Field(ge=0)
    rpm: Optional[int] = Field(default=None, ge=1)
    tpm: Optional[int] = Field(default=None, ge=1)
    fallbacks: list[str]
    replicas: list[str]
    ray_address: Optional[str] = None
    ray_workers: Optional[int] = Field(default=None, ge=1)
    batch: bool
    batch_poll_seconds: float = Field(gt=0)
    batch_max_requests: int = Field(ge=1, le=50_000)
    batch_max_open: Optional[int] = Field(default=None, ge=1)
    prompts: Optional[Path] = None
    prompt_set: Literal["llmaug", "reference"] = "llmaug"
    output_tokens_estimate: dict[str, int]
    local_model: Optional[Path] = None
    local_context: int = Field(ge=256)
    local_parallel: int = Field(ge=1, le=64)
    local_threads: Optional[int] = Field(default=None, ge=1)
    local_server_args: list[str]

    @field_validator("split")
    @classmethod
    def _three_positive_ratios(cls, value: list[float]) -> list[float]:
        if len(value) != 3 or any(r <= 0 for r in value):
            raise ValueError("split needs three positive ratios: train, valid, test")
        return value

    @field_validator("votes")
    @classmethod
    def _votes_in_orders_of_their_own(cls, value: int, info: ValidationInfo) -> int:
        if value > 1 and info.data.get("candidate_order") == "ranked":
            raise ValueError("votes ask each user's candidates in orders of their own: set candidate_order: shuffled "
                             "(--candidate-order shuffled), or votes: 1")
        return value

    @field_validator("replicas")
    @classmethod
    def _replicas_beside_api_base(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and not info.data.get("api_base"):
            raise ValueError("replicas are further servers of the model at api_base: set api_base (--api-base) too")
        return value

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in TASK_NAMES]
        if unknown or not value:
            raise ValueError(f"tasks must be a non-empty subset of {', '.join(TASK_NAMES)}; got {value}")
        return list(dict.fromkeys(value))


def builtin_defaults() -> dict[str, Any]:
    return yaml.safe_load(resources.files("llmaug").joinpath("defaults.yaml").read_text())


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def load_settings(config_file: Optional[Path] = None, overrides: Optional[dict[str, Any]] = None) -> Settings:
    """Merge the layers; ``overrides`` (flags) win, ``None`` values in it mean "not given"."""
    merged = builtin_defaults()
    layers = [read_config_file(config_file) if config_file else {}, {k: v for k, v in (overrides or {}).items() if v is not None}]
    for layer in layers:
        for key, value in layer.items():
            if key == "fields" and isinstance(value, dict):
                merged["fields"] = {**merged["fields"], **value}
            else:
                merged[key] = value
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "config"
        raise ConfigError(f"invalid setting '{where}': {error['msg']}") from None
