"""Which answers are decoded under a grammar, and what a self-hosted server is.

litellm's capability table (``supports_response_schema``) knows hosted models only: for every
self-hosted ``openai/<name>`` it says no, and a model that is not constrained rambles to
``max_tokens`` (a 270M model on a CPU: 52 s for one edge answer instead of 2 s). vLLM, llama.cpp,
Ollama and SGLang all decode under a JSON schema, so ``auto`` sends it to them too; a server that
rejects it costs one warning and a fallback to the prompt's own format section, never the run.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from .servers import is_self_hosted

MODES = ("auto", "json_schema", "json_object", "off")

# A 400 about the response format (vLLM, llama.cpp, Ollama, OpenAI and litellm's own
# UnsupportedParamsError word it differently) rather than about the prompt.
_FORMAT_REJECTED = re.compile(r"response_format|json[ _]?schema|json_object|structured output|grammar", re.I)


def resolve_mode(setting: str, litellm: Any, model: str, api_base: Optional[str]) -> str:
    """``setting`` as one of json_schema / json_object / off for this model."""
    if setting != "auto":
        return setting
    try:
        supported = bool(litellm.supports_response_schema(model=model))
    except Exception:
        supported = False
    return "json_schema" if supported or is_self_hosted(litellm, model, api_base) else "off"


def response_format(mode: str, name: str, schema: dict[str, Any]) -> Optional[dict[str, Any]]:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def rejects_format(message: str) -> bool:
    """Whether a bad-request error is the server refusing ``response_format``."""
    return bool(_FORMAT_REJECTED.search(message))
