"""Paid requests through a provider's Batch API (OpenAI, Azure): the same prompts, validation and
journal as live requests, at half the price and without rate limits, answered within 24 hours."""

from .provider import BatchProvider

__all__ = ["BatchProvider"]
