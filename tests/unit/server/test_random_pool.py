"""`RandomPool`: fresh values never repeated, also across a fork and between threads; the request
ids and access-token `jti`s drawn from it."""

from __future__ import annotations

import os
import re
import threading

import pytest

from authgate.server.random_pool import RandomPool
from authgate.server.tokens.issuer import _new_jti


def test_values_have_their_size_and_are_distinct() -> None:
    pool = RandomPool(16, batch=8)
    values = [pool.take() for _ in range(1000)]  # many batches
    assert {len(v) for v in values} == {16}
    assert len(set(values)) == len(values)


def test_bad_sizes_are_refused() -> None:
    for size, batch in ((0, 64), (16, 0)):
        with pytest.raises(ValueError, match="at least 1"):
            RandomPool(size, batch=batch)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_batch() -> None:
    pool = RandomPool(8)
    pool.take()  # a batch is now held
    assert len(pool)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, f"{len(pool)} {pool.take().hex()}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        held, child_value = pipe.read().split()
    os.waitpid(pid, 0)
    assert held == "0"  # forgotten in the child before its first value
    rest = {pool.take().hex() for _ in range(len(pool))}
    assert child_value not in rest


def test_threads_never_get_the_same_value() -> None:
    pool = RandomPool(8, batch=64)
    got: list[list[bytes]] = [[] for _ in range(4)]

    def take(out: list[bytes]) -> None:
        for _ in range(3 * 64):
            out.append(pool.take())

    threads = [threading.Thread(target=take, args=(out,)) for out in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [v for out in got for v in out]
    assert len(set(every)) == len(every)


def test_jtis_are_128_random_bits_in_base64url() -> None:
    jtis = [_new_jti() for _ in range(500)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", j) for j in jtis)
    assert len(set(jtis)) == len(jtis)
