"""Random bytes for the values made on every request (request ids, access-token `jti`s), drawn from
the OS's random source many values at a time: one system call instead of one per value. A forked
child forgets what its parent drew, so two processes never hand out the same value (two tokens
with one `jti` would be revoked together)."""

from __future__ import annotations

import os

__all__ = ["RandomPool"]


class RandomPool:
    """`take()`: `size` fresh random bytes, never handed out twice (also across threads, whose
    `list.pop` is atomic). Make one per kind of value, at import: each registers a fork hook."""

    __slots__ = ("_batch", "_drawn", "_size")

    def __init__(self, size: int, *, batch: int = 64) -> None:
        if size < 1 or batch < 1:
            raise ValueError("size and batch must be at least 1")
        self._size = size
        self._batch = batch
        self._drawn: list[bytes] = []
        os.register_at_fork(after_in_child=self._drawn.clear)

    def __len__(self) -> int:
        """The values drawn and not yet taken."""
        return len(self._drawn)

    def take(self) -> bytes:
        try:
            return self._drawn.pop()
        except IndexError:
            size = self._size
            batch = os.urandom(size * self._batch)
            self._drawn.extend(batch[i : i + size] for i in range(size, len(batch), size))
            return batch[:size]
