"""When CPython's cyclic garbage collector runs during a command.

Reading, planning, ranking and writing allocate a few objects per document — 100,000 documents
are half a million objects, none of them part of a cycle — and each allocation burst makes the
collector walk the growing heap again: a third of the CPU time of a large cached rerun. So a
command runs with the collector paused (:func:`paused`), and lets it run only while waiting on
the network (:func:`resumed`), where exceptions and futures do make cycles — over the objects
created from then on, the documents being frozen out of its sight.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class _State:
    paused = False  # by us: a collector someone else turned off stays off


_state = _State()


@contextmanager
def paused() -> Iterator[None]:
    if not gc.isenabled():
        yield
        return
    gc.disable()
    _state.paused = True
    try:
        yield
    finally:
        _state.paused = False
        gc.enable()


@contextmanager
def resumed() -> Iterator[None]:
    """Collect again inside :func:`paused`, over new objects only."""
    if not _state.paused:
        yield
        return
    # Someone else's frozen objects (a pre-fork server) must stay frozen after we are done.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    _state.paused = False
    gc.enable()
    try:
        yield
    finally:
        gc.disable()
        _state.paused = True
        if freeze:
            gc.unfreeze()
