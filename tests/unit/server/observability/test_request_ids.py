"""Generated request ids (`observability.request_ids`): 64 random bits as 16 hex digits, each
handed out once, drawn in batches from `os.urandom`, and not shared with a forked child."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator

import pytest

from authgate.http_forwarding import TrustedProxies
from authgate.server.observability import request_ids
from authgate.server.observability.request_ids import accept_request_id, new_request_id

_GENERATED = re.compile(r"[0-9a-f]{16}")


def test_ids_are_16_hex_digits_and_distinct_across_batches() -> None:
    ids = [new_request_id() for _ in range(5 * request_ids._BATCH + 3)]
    assert all(_GENERATED.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_ids_come_from_os_urandom_one_call_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.urandom

    def counting(size: int) -> bytes:
        calls.append(size)
        return real(size)

    monkeypatch.setattr(request_ids._drawn, "ids", iter(()))
    monkeypatch.setattr(request_ids.os, "urandom", counting)
    for _ in range(2 * request_ids._BATCH + 1):
        new_request_id()
    assert calls == [8 * request_ids._BATCH] * 3


def test_threads_never_get_the_same_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_ids._drawn, "ids", iter(()))
    got: list[list[str]] = [[] for _ in range(4)]

    def take(out: list[str]) -> None:
        for _ in range(3 * request_ids._BATCH):
            out.append(new_request_id())

    threads = [threading.Thread(target=take, args=(out,)) for out in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in got for i in out]
    assert len(set(every)) == len(every)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_drawn_ids() -> None:
    new_request_id()  # the parent holds drawn ids not handed out yet
    pending: Iterator[str] = request_ids._drawn.ids
    parents_next = list(pending)
    request_ids._drawn.ids = iter(parents_next)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first id
        try:
            os.write(write, new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    child_first = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert _GENERATED.fullmatch(child_first)
    assert child_first not in parents_next
    assert new_request_id() == parents_next[0]  # the parent's own ids are untouched


def test_an_untrusted_peer_cannot_choose_its_id() -> None:
    chosen = accept_request_id(b"chosen-id", "203.0.113.5", TrustedProxies())
    assert chosen != "chosen-id"
    assert _GENERATED.fullmatch(chosen)
