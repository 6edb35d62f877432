"""Peak memory of torch's CPU allocator during a call, for the tests that bound a path's extra memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.profiler import ProfilerActivity, profile


def torch_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of torch's CPU allocator during ``fn()`` (allocations minus frees, in time order)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []

    def walk(nodes: Any) -> None:
        for node in nodes:
            if type(node.extra_fields).__name__ == "_ExtraFields_Allocation":
                events.append((node.start_time_ns, node.extra_fields.alloc_size))
            walk(node.children)

    walk(prof.profiler.kineto_results.experimental_event_tree())
    running = top = 0
    for _, size in sorted(events):
        running += size
        top = max(top, running)
    return top
