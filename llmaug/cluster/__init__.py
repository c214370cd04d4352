"""Beyond one machine: the live provider's work spread over a Ray cluster (``--ray``)."""

from .ray_provider import RayProvider

__all__ = ["RayProvider"]
