"""Providers by name: ``offline`` (no network) or any litellm model string."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..config import Settings
from ..errors import ConfigError
from ..prompt_data import PromptData
from .base import Provider

ProviderFactory = Callable[[Settings, PromptData, dict[str, int], Optional[np.ndarray]], Provider]


def _offline(settings: Settings, data: PromptData, item_index: dict[str, int], item_vectors: Optional[np.ndarray]) -> Provider:
    from .offline import OfflineProvider

    return OfflineProvider(data, item_index, item_vectors)


def _litellm(settings: Settings, data: PromptData, item_index: dict[str, int], item_vectors: Optional[np.ndarray]) -> Provider:
    from ..rendering import PromptRenderer
    from .llm import LiteLLMProvider

    return LiteLLMProvider(settings, PromptRenderer(settings.prompts, settings.domain))


def get_provider(settings: Settings) -> ProviderFactory:
    """Check the model name before anything is written; return how to build its provider."""
    if settings.model == "offline":
        return _offline
    from .llm import import_litellm

    litellm = import_litellm()
    try:
        litellm.get_llm_provider(settings.model, api_base=settings.api_base)
    except Exception:
        raise ConfigError(
            f"unknown model '{settings.model}': use 'offline' or a litellm model string such as "
            "openai/gpt-4o-mini, ollama_chat/llama3.1, hosted_vllm/<name>, openai/<name> with --api-base"
        ) from None
    return _litellm
