"""Jinja prompt templates -> chat messages.

Templates render in a sandbox with ``StrictUndefined``: dataset text arrives only as variable
values, never as template source, so a title such as ``{{ 7*7 }}`` is printed literally, and a
template that names a missing variable fails loudly instead of sending a hole to a paid API.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ConfigError
from .tasks import Job, Task

Messages = list[dict[str, str]]


class PromptRenderer:
    def __init__(self, override_dir: Optional[Path] = None, domain: str = "item", prompt_set: str = "llmaug") -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            if not Path(override_dir).is_dir():
                raise ConfigError(f"--prompts {override_dir} is not a directory")
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        # The built-in sets: llmaug's own (prompts/) and, over it, another set's templates
        # (prompts/reference/: the LLMRec reference code's wording, JSON answers kept; docs/PAPER.md).
        built_in = resources.files("llmaug.prompts")
        if prompt_set != "llmaug":
            loaders.append(jinja2.FileSystemLoader(str(built_in / prompt_set)))
        loaders.append(jinja2.FileSystemLoader(str(built_in)))
        self.env = ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self.domain = domain
        self._templates: dict[str, jinja2.Template] = {}

    @classmethod
    def for_settings(cls, settings) -> "PromptRenderer":
        return cls(settings.prompts, settings.domain, settings.prompt_set)

    def template(self, task: str) -> jinja2.Template:
        if task not in self._templates:
            try:
                self._templates[task] = self.env.get_template(f"{task}.jinja")
            except jinja2.TemplateSyntaxError as exc:
                raise ConfigError(f"prompt template {exc.filename or task}: line {exc.lineno}: {exc.message}") from None
            except jinja2.TemplateNotFound:
                raise ConfigError(f"no prompt template {task}.jinja") from None
        return self._templates[task]

    def template_hash(self, task: str) -> str:
        template = self.template(task)
        source = Path(template.filename).read_bytes() if template.filename else b""
        return hashlib.sha256(source).hexdigest()[:16]

    def render(self, task: Task, job: Job) -> Messages:
        template = self.template(task.name)
        variables: dict[str, Any] = {
            **job.context,
            "domain": self.domain,
            "output_schema": json.dumps(task.answer_schema(job), ensure_ascii=False),
        }
        try:
            context = template.new_context(variables)
            messages = []
            for role in ("system", "user"):
                if role in template.blocks:
                    text = "".join(template.blocks[role](context)).strip()
                    if text:
                        messages.append({"role": role, "content": text})
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"prompt template {task.name}.jinja: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise ConfigError(f"prompt template {task.name}.jinja does something unsafe: {exc}") from None
        if not any(m["role"] == "user" for m in messages):
            raise ConfigError(f"prompt template {task.name}.jinja must define a non-empty 'user' block")
        return messages
