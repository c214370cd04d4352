"""What a run costs the machine: wall and CPU seconds and peak memory per stage."""

from .timer import Timer

__all__ = ["Timer"]
