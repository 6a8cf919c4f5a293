"""The metrics of several worker processes (`authgate serve --workers N`), answered by any one.

Each worker keeps its own plain counters, as a single process does. When `AUTHGATE_METRICS_DIR`
names a directory (`serve` sets it when it starts more than one worker: a new temporary directory,
removed when the workers have stopped), each worker also writes the samples of its metrics to
`DIR/<pid>.json` every `WRITE_INTERVAL` seconds and when it stops (written aside and renamed into
place, so a reader never sees half a file). The worker that answers a scrape adds the other
workers' last samples to its own live ones:

- counters and histograms are summed over every file, those of workers that have exited
  included, so that totals never go down while the server runs;
- the pool gauges (connections in use, checkouts waiting, capacity) are summed over the workers
  whose file is fresh (written within `FRESH_FOR` seconds), and `authgate_limit_store_up` is the
  lowest of theirs;
- every other gauge (the key schedule, pending device codes) is the same in every worker and
  comes from the one answering.

Another worker's counts in a scrape are at most about `WRITE_INTERVAL` seconds old. Nothing here
runs on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

__all__ = [
    "FRESH_FOR",
    "METRICS_DIR_VARIABLE",
    "WRITE_INTERVAL",
    "Families",
    "WorkerMetrics",
    "WorkerSnapshot",
    "clear_directory",
    "merge_workers",
]

METRICS_DIR_VARIABLE = "AUTHGATE_METRICS_DIR"
WRITE_INTERVAL = 1.0  # seconds between two writes of a worker's samples
FRESH_FOR = 5.0  # seconds a worker's gauges count after its last write
_SUMMED_GAUGES = frozenset(
    {
        "authgate_server_db_pool_connections_in_use",
        "authgate_server_db_pool_capacity",
        "authgate_server_db_pool_waiting",
    }
)
_LOWEST_GAUGES = frozenset({"authgate_limit_store_up"})

_log = logging.getLogger("authgate.server")

_Labels = tuple[tuple[str, str], ...]
_Key = tuple[str, _Labels]


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """One worker's samples as last written: {family: {(sample name, labels): value}}."""

    written_at: float
    families: Mapping[str, Mapping[_Key, float]]

    def to_json(self) -> str:
        families = {
            name: [
                [sample, list(map(list, labels)), value] for (sample, labels), value in s.items()
            ]
            for name, s in self.families.items()
        }
        return json.dumps({"written_at": self.written_at, "families": families})

    @classmethod
    def from_json(cls, text: str) -> WorkerSnapshot:
        """Parse a file written by `to_json`; `ValueError` (or a `TypeError`, `KeyError`) for
        anything else."""
        data = json.loads(text)
        families: dict[str, dict[_Key, float]] = {}
        for name, samples in data["families"].items():
            families[str(name)] = {
                (str(sample), tuple((str(k), str(v)) for k, v in labels)): float(value)
                for sample, labels, value in samples
            }
        return cls(float(data["written_at"]), families)

    @classmethod
    def of(cls, families: Iterable[Metric], written_at: float) -> WorkerSnapshot:
        return cls(written_at, {f.name: dict(_samples(f)) for f in families})


def _samples(family: Metric) -> Iterator[tuple[_Key, float]]:
    for s in family.samples:
        yield (s.name, tuple(sorted(s.labels.items()))), float(s.value)


def merge_workers(
    local: list[Metric], others: Iterable[WorkerSnapshot], now: float
) -> list[Metric]:
    """`local` (this worker's families, changed in place) with the other workers' samples added
    as the module docstring says."""
    others = list(others)
    fresh = [o for o in others if now - o.written_at < FRESH_FOR]
    for family in local:
        lowest = family.name in _LOWEST_GAUGES
        if family.type == "gauge":
            if family.name not in _SUMMED_GAUGES and not lowest:
                continue
            sources = fresh
        else:
            sources = others
        values = dict(_samples(family))
        for other in sources:
            for key, value in other.families.get(family.name, {}).items():
                if key not in values:
                    values[key] = value
                elif lowest:
                    values[key] = min(values[key], value)
                else:
                    values[key] += value
        family.samples = [
            Sample(name, dict(labels), value) for (name, labels), value in values.items()
        ]
    return local


class Families(Collector):
    """Families collected already, for a registry to render."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


class WorkerMetrics:
    """This worker's file in the shared directory, and the other workers' files."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid

    @classmethod
    def from_environment(cls) -> WorkerMetrics | None:
        """The shared directory `AUTHGATE_METRICS_DIR` names, or None (one process)."""
        directory = os.environ.get(METRICS_DIR_VARIABLE)
        return cls(Path(directory)) if directory else None

    @property
    def path(self) -> Path:
        return self.directory / f"{self.pid}.json"

    def write(self, families: Iterable[Metric]) -> None:
        """Replace this worker's file with these samples."""
        snapshot = WorkerSnapshot.of(families, time.time())
        partial = self.directory / f".{self.pid}.json.partial"
        partial.write_text(snapshot.to_json(), encoding="utf-8")
        partial.replace(self.path)

    def others(self) -> list[WorkerSnapshot]:
        """The last samples of every other worker (a file that cannot be read is skipped)."""
        snapshots = []
        for path in self.directory.glob("*.json"):
            if path == self.path:
                continue
            try:
                snapshots.append(WorkerSnapshot.from_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, KeyError):
                continue
        return snapshots

    def merged(self, local: list[Metric]) -> list[Metric]:
        """`local` with the other workers' samples (`merge_workers`)."""
        return merge_workers(local, self.others(), time.time())

    async def run(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Write this worker's samples every `WRITE_INTERVAL` seconds until cancelled, and once
        more then. A failed write is logged and tried again at the next interval."""
        try:
            while True:
                self._write_logged(collect)
                await asyncio.sleep(WRITE_INTERVAL)
        finally:
            self._write_logged(collect)

    def _write_logged(self, collect: Callable[[], Iterable[Metric]]) -> None:
        try:
            self.write(collect())
        except OSError as exc:
            _log.warning("writing this worker's metrics failed: %s", type(exc).__name__)


def clear_directory(directory: Path) -> None:
    """Remove the files of an earlier run from a shared metrics directory."""
    for path in directory.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
