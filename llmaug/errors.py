"""One root for every failure a user can cause or fix; the CLI turns it into one line and exit 2.

Anything that is not an ``LlmaugError`` is a bug and keeps its traceback.
"""


class LlmaugError(Exception):
    """A problem with the user's input, configuration or environment, not with llmaug."""

    exit_code = 2


class ConfigError(LlmaugError):
    """A config file, config key or command-line flag is invalid."""


class DatasetError(LlmaugError):
    """The input dataset is missing, malformed or lacks a configured field."""


class OutputError(LlmaugError):
    """The output directory cannot be used (e.g. non-empty and not an llmaug run)."""


class ProviderError(LlmaugError):
    """The LLM or embedding provider cannot be reached or configured."""


class ModelError(LlmaugError):
    """A recommender model cannot be used the way it was asked (e.g. not wrappable by an adapter)."""
