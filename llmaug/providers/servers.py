"""What llmaug knows about servers users run themselves (vLLM, llama.cpp, Ollama, SGLang...)."""

from __future__ import annotations

from typing import Any, Optional

import httpx

# litellm providers that are always a server the user runs; ``openai`` counts when it has an api_base.
SELF_HOSTED_PROVIDERS = frozenset({"hosted_vllm", "ollama", "ollama_chat", "lm_studio", "llamafile", "openai_like", "xinference"})


def is_self_hosted(litellm: Any, model: str, api_base: Optional[str]) -> bool:
    try:
        provider = litellm.get_llm_provider(model, api_base=api_base)[1]
    except Exception:
        return False
    return provider in SELF_HOSTED_PROVIDERS or (provider == "openai" and bool(api_base))


def server_slots(api_base: str) -> Optional[int]:
    """How many requests a llama.cpp server decodes at once (its ``/props``); ``None`` for a server
    that does not say (vLLM and SGLang batch continuously, Ollama keeps it to itself)."""
    root = api_base.rstrip("/").removesuffix("/v1")
    try:
        response = httpx.get(f"{root}/props", timeout=5)
        slots = response.json().get("total_slots") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return slots if isinstance(slots, int) and slots > 0 else None
