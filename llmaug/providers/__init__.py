"""LLM providers: the offline baseline and litellm."""
