"""`settle_heap`: the start-up heap frozen, and the young generation's threshold raised."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from authgate.gateway.runner import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_heap_freezes_and_raises_only_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert YOUNG_THRESHOLD > 700  # a cyclic collector that still runs, less often
    assert gc.isenabled()
