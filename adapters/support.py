"""Which RecBole recommenders the adapter takes, of all four families, and why not the others: the support matrix.

The README's table is ``render(matrix())``; ``tests/test_support_matrix.py`` trains every row
that says "adapts" and fails when the README's copy differs from what it checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmaug.errors import ModelError
from llmaug.recbole_compat import MODEL_FAMILIES, model_package

from .shapes import shape_of

BEGIN, END = "<!-- support-matrix:begin -->", "<!-- support-matrix:end -->"



@dataclass(frozen=True)
class Support:
    family: str
    model: str
    adapts: bool
    how: str  # where h goes, or why the model is refused
    scored_by: str = ""  # what scores the LLM's triplets


def recommenders(family: str) -> list[type]:
    """Every model class RecBole ships in a family, by name."""
    package = model_package(MODEL_FAMILIES[family])
    classes = [getattr(package, name) for name in dir(package)]
    return sorted((c for c in classes if isinstance(c, type)), key=lambda c: c.__name__.lower())


def support_of(model_class: type, family: str) -> Support:
    try:
        shape = shape_of(model_class)
    except ModelError as refusal:
        return Support(family, model_class.__name__, False, str(refusal).split(": ", 1)[1])
    return Support(family, model_class.__name__, True, shape.description, shape.triplet_score)


def matrix() -> list[Support]:
    return [support_of(c, family) for family in MODEL_FAMILIES for c in recommenders(family)]


def render(rows: list[Support]) -> str:
    """The Markdown table between the README's support-matrix markers."""
    lines = [
        BEGIN,
        "| family | model | adapted | where h = e + ω1·Σf goes, or why not | LLM triplets scored by |",
        "|---|---|---|---|---|",
        *(f"| {r.family} | {r.model} | {'yes' if r.adapts else 'no'} | {r.how} | {r.scored_by or '–'} |" for r in rows),
        END,
    ]
    return "\n".join(lines)


def readme_section(text: str) -> str:
    """The support-matrix block of a README's text ('' if it has none)."""
    if BEGIN not in text or END not in text:
        return ""
    return text[text.index(BEGIN): text.index(END) + len(END)]
