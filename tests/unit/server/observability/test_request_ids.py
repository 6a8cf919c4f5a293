"""Request ids: fresh ones are 16 hex digits, never repeated, also across a fork."""

from __future__ import annotations

import os
import re
import threading

import pytest

from authgate.http_forwarding import TrustedProxies
from authgate.server.observability import request_ids
from authgate.server.observability.request_ids import accept_request_id, new_request_id


def test_fresh_ids_are_distinct_hex() -> None:
    ids = [new_request_id() for _ in range(1000)]  # several batches
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_batch() -> None:
    new_request_id()  # a batch is now held
    assert request_ids._pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, f"{len(request_ids._pool)} {new_request_id()}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        held, child_id = pipe.read().split()
    os.waitpid(pid, 0)
    assert held == "0"  # forgotten in the child before its first id
    assert child_id not in request_ids._pool
    assert child_id != new_request_id()


def test_threads_never_get_the_same_id() -> None:
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


def test_an_untrusted_peer_cannot_choose_its_id() -> None:
    chosen = accept_request_id(b"chosen-id", "203.0.113.5", TrustedProxies())
    assert chosen != "chosen-id"
    assert re.fullmatch(r"[0-9a-f]{16}", chosen)
