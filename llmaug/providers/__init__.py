"""Providers by name: ``offline`` (no network), ``local`` (a llama.cpp server llmaug runs) or any
litellm model string."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..config import Settings
from ..errors import ConfigError
from ..prompt_data import PromptData
from .base import Provider


@dataclass(frozen=True)
class ProviderContext:
    """What a provider may use besides the settings."""

    data: PromptData
    item_index: dict[str, int]
    item_vectors: Optional[np.ndarray]  # None in a dry run: nothing is embedded
    state_dir: Path                     # the run's .llmaug directory (server logs, the batch ledger)
    warn: Callable[[str], None]
    stage: Callable[[str, Optional[float]], Any]  # a progress line of its own (the Batch API's)


ProviderFactory = Callable[[Settings, ProviderContext], Provider]


def _offline(settings: Settings, context: ProviderContext) -> Provider:
    from .offline import OfflineProvider

    return OfflineProvider(context.data, context.item_index, context.item_vectors)


def _litellm(settings: Settings, context: ProviderContext) -> Provider:
    from ..rendering import PromptRenderer
    from .llm import LiteLLMProvider

    return LiteLLMProvider(settings, PromptRenderer.for_settings(settings), context.warn)


def _local(settings: Settings, context: ProviderContext) -> Provider:
    from ..rendering import PromptRenderer
    from .local import LocalProvider

    return LocalProvider(settings, PromptRenderer.for_settings(settings), context.state_dir, context.warn)


def _batch(settings: Settings, context: ProviderContext) -> Provider:
    from ..batch import BatchProvider
    from ..rendering import PromptRenderer

    return BatchProvider(settings, PromptRenderer.for_settings(settings), context.state_dir, context.stage, context.warn)


def _ray(settings: Settings, context: ProviderContext) -> Provider:
    from ..cluster import RayProvider

    return RayProvider(settings, _litellm(settings, context))


def get_provider(settings: Settings) -> ProviderFactory:
    """Check the model name before anything is written; return how to build its provider."""
    if settings.batch and settings.model in ("offline", "local"):
        raise ConfigError(f"--batch sends paid requests through a provider's Batch API; model '{settings.model}' has none")
    if settings.ray_address and (settings.batch or settings.model in ("offline", "local")):
        why = "--batch hands the work to the provider" if settings.batch else f"model '{settings.model}' runs on this machine"
        raise ConfigError(f"--ray spreads live requests to an LLM service over a cluster; {why}")
    if settings.model == "offline":
        return _offline
    if settings.model == "local":
        from .local import check_installed

        check_installed(settings)
        return _local
    if settings.ray_address:  # a cluster that is not there: one line at once, not after litellm's seconds of imports
        from ..cluster.address import find_target
        from ..cluster.ray_provider import import_ray

        import_ray()
        find_target(settings.ray_address)
    from .llm import import_litellm

    litellm = import_litellm()
    try:
        provider = litellm.get_llm_provider(settings.model, api_base=settings.api_base)[1]
    except Exception:
        raise ConfigError(
            f"unknown model '{settings.model}': use 'offline', 'local' or a litellm model string such as "
            "openai/gpt-4o-mini, ollama_chat/llama3.1, hosted_vllm/<name>, openai/<name> with --api-base"
        ) from None
    if settings.batch:
        from ..batch.provider import PROVIDERS

        if provider not in PROVIDERS:
            raise ConfigError(f"--batch needs a provider with a Batch API (openai/..., azure/...); '{settings.model}' is {provider}")
        return _batch
    if settings.ray_address:
        return _ray
    return _litellm
