"""Request ids: fresh ones are 16 hex digits, never repeated (across a fork and threads too:
tests/unit/server/test_random_pool.py)."""

from __future__ import annotations

import re

from authgate.http_forwarding import TrustedProxies
from authgate.server.observability.request_ids import accept_request_id, new_request_id


def test_fresh_ids_are_distinct_hex() -> None:
    ids = [new_request_id() for _ in range(1000)]  # several batches
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_an_untrusted_peer_cannot_choose_its_id() -> None:
    chosen = accept_request_id(b"chosen-id", "203.0.113.5", TrustedProxies())
    assert chosen != "chosen-id"
    assert re.fullmatch(r"[0-9a-f]{16}", chosen)
