"""Providers by name: ``offline`` (no network) or, from the LLM layer, a litellm model string."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..config import Settings
from ..errors import ConfigError
from ..prompt_data import PromptData
from .base import Provider

ProviderFactory = Callable[[Settings, PromptData, dict[str, int], np.ndarray], Provider]


def _offline(settings: Settings, data: PromptData, item_index: dict[str, int], item_vectors: np.ndarray) -> Provider:
    from .offline import OfflineProvider

    return OfflineProvider(data, item_index, item_vectors)


def get_provider(model: str) -> ProviderFactory:
    if model == "offline":
        return _offline
    raise ConfigError(f"unknown model '{model}': use 'offline' (LLM providers come with the litellm layer)")
