"""Pages from the segments of a parallel Scan, as one stream of pages.

Each segment is read in its own thread (DynamoDB serves segments side by side);
pages come out in the order they arrive, at most `2 * segments` held in memory. A
segment's error is raised to the reader once the segments already running stop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

Page = TypeVar("Page")
MAX_SEGMENTS = 64


class _Done:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def parallel_pages(
    segment_pages: Callable[[int, int], Iterator[Page]], segments: int
) -> Iterator[Page]:
    """`segment_pages(segment, total)` for each segment, merged."""
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"segments must be from 1 to {MAX_SEGMENTS}, got {segments}")
    if segments == 1:
        yield from segment_pages(0, 1)
        return
    out: queue.Queue[Page | _Done] = queue.Queue(maxsize=2 * segments)
    stop = threading.Event()

    def read(segment: int) -> None:
        try:
            for page in segment_pages(segment, segments):
                if stop.is_set():
                    break
                out.put(page)
        except BaseException as err:  # handed to the reader
            out.put(_Done(err))
            return
        out.put(_Done())

    threads = [
        threading.Thread(target=read, args=(n,), name=f"scan-{n}", daemon=True)
        for n in range(segments)
    ]
    for thread in threads:
        thread.start()
    running, error = segments, None
    try:
        while running:
            item = out.get()
            if isinstance(item, _Done):
                running -= 1
                if item.error is not None and error is None:
                    error = item.error
                    stop.set()
                continue
            if error is None:
                yield item
    finally:
        stop.set()
        while running:  # let blocked readers finish
            if isinstance(out.get(), _Done):
                running -= 1
    if error is not None:
        raise error
