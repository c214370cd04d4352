"""Answer schemas, declared once: they render the prompt's output format, feed
``response_format`` and validate what comes back (STYLE.md, "one schema, three uses")."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

# Placeholders an LLM writes when it does not know: stored as empty, never as knowledge.
_UNKNOWN = re.compile(r"^\s*(unknown|n/?a|none|null|not (specified|available|known|applicable)|unspecified|-+|\?+)?\s*\.?\s*$", re.I)
_CONTROL = re.compile(r"[\t\r\n\x00-\x1f]+")
# A profile field or attribute is a few words. The limit is in the schema, so a server decoding under
# it closes the string instead of rambling to max_tokens (a 270M model did: 512 tokens, 20 s).
TEXT_MAX_CHARS = 120


def clean_text(value: Any) -> Optional[str]:
    """Join lists, flatten whitespace (atomic files are tab/line separated) and drop placeholders."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [clean_text(v) for v in value]
        value = ", ".join(p for p in parts if p)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("expected text, a number or a list of them")
    text = _CONTROL.sub(" ", str(value)).strip()
    return None if _UNKNOWN.match(text) else text


Text = Annotated[Optional[str], BeforeValidator(clean_text)]


class EdgeChoice(BaseModel):
    """P_UI's answer: candidate numbers as shown in the prompt (1-based)."""

    model_config = ConfigDict(extra="forbid")

    liked: int = Field(description="number of the candidate the user would most likely enjoy")
    disliked: int = Field(description="number of the candidate the user would least likely enjoy")


@lru_cache(maxsize=None)
def text_record(name: str, fields: tuple[str, ...]) -> type[BaseModel]:
    """A schema of optional text fields (user profile, item attributes) built from config."""
    spec = {f: (Text, Field(default=None, max_length=TEXT_MAX_CHARS, description=f.replace("_", " "))) for f in fields}
    return create_model(name, __config__=ConfigDict(extra="forbid"), **spec)


def describe(record: dict[str, Optional[str]]) -> str:
    """The text that gets embedded: known fields only, so an unknown never looks like knowledge."""
    return "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in record.items() if value)
