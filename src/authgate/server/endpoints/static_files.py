"""The pages' static files (the stylesheet): the operator's directories first, then the built-in
`authgate/server/static`, so a team restyles the pages by serving its own `authgate.css`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from starlette.staticfiles import PathLike, StaticFiles

__all__ = ["BUILTIN_STATIC", "static_files"]

BUILTIN_STATIC = Path(__file__).resolve().parent.parent / "static"


class _LayeredStaticFiles(StaticFiles):
    """`StaticFiles` over several directories, searched in order."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self._layers = [str(d) for d in directories]
        super().__init__(directory=self._layers[0])

    def get_directories(
        self,
        directory: PathLike | None = None,
        packages: list[str | tuple[str, str]] | None = None,
    ) -> list[PathLike]:
        return [os.path.realpath(d) for d in self._layers]


def static_files(operator_dirs: Sequence[Path]) -> StaticFiles:
    """The ASGI app serving `/static`: the operator's directories, then the built-in one."""
    return _LayeredStaticFiles([*operator_dirs, BUILTIN_STATIC])
