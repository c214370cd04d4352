"""What a run costs the machine: wall and CPU seconds and peak memory per stage, and memory handed
back between stages."""

from .memory import large_blocks_returned, release_freed_memory, survivors_set_aside, trim_heap
from .timer import Timer

__all__ = ["Timer", "large_blocks_returned", "release_freed_memory", "survivors_set_aside", "trim_heap"]
