"""The unit tests mirror the code: `tests/unit/<package>/test_<module>.py` holds the tests of
`src/authgate/<package>/<module>.py` (or of a package `src/authgate/<package>/<module>/`), so that
a reader finds them at once. A file may add a topic after the module's name
(`test_jwk_algorithms.py` tests `jose/jwk.py`). This test keeps the mirror from drifting; the few
files that test no single module are listed below with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
UNIT = TESTS / "unit"
SRC = TESTS.parent / "src" / "authgate"

# Paths relative to tests/unit; a folder excepts everything under it.
EXCEPTIONS = {
    "jose/vectors": "published vectors (RFC examples, Wycheproof), grouped by source, not module",
    "jose/test_properties.py": "property-based tests of jws, jwt and jwk together",
    "jose/test_public_api.py": "the package's public face: every public module's __all__",
    "limits/test_layers.py": "the import layering of the whole limits package",
}


def _excepted(relative: Path) -> bool:
    return any(relative == Path(name) or Path(name) in relative.parents for name in EXCEPTIONS)


def _mirrors(relative: Path) -> bool:
    """Does tests/unit/<dirs>/test_<name>.py name a module or package under src/authgate/<dirs>?"""
    folder = SRC.joinpath(*relative.parent.parts)
    words = relative.stem.removeprefix("test_").split("_")
    # The module's name, then optionally `_<topic>`: try the longest prefix first.
    for end in range(len(words), 0, -1):
        name = "_".join(words[:end])
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            return True
    return False


def _unit_test_files() -> list[Path]:
    return sorted(p.relative_to(UNIT) for p in UNIT.rglob("test_*.py"))


def test_the_unit_tests_exist() -> None:
    assert len(_unit_test_files()) > 50  # the walk below must not pass by finding nothing


@pytest.mark.parametrize("relative", _unit_test_files(), ids=str)
def test_each_unit_test_file_mirrors_a_module(relative: Path) -> None:
    if _excepted(relative):
        return
    assert _mirrors(relative), (
        f"tests/unit/{relative} names no module of src/authgate/{relative.parent}: name it "
        "test_<module>[_<topic>].py after the module it tests, or list it in EXCEPTIONS with a "
        "reason"
    )


def test_each_unit_folder_mirrors_a_package() -> None:
    folders = {p.parent for p in _unit_test_files()} - {Path()}
    strays = [str(f) for f in folders if not _excepted(f) and not SRC.joinpath(*f.parts).is_dir()]
    assert strays == [], f"tests/unit folders without a src/authgate package: {strays}"


def test_the_exceptions_still_exist() -> None:
    missing = [name for name in EXCEPTIONS if not (UNIT / name).exists()]
    assert missing == [], f"EXCEPTIONS names files that are gone: {missing}"


def test_every_test_folder_is_a_package() -> None:
    """Without `__init__.py` two test files may not share a base name (pytest's import mode)."""
    skip = {"node", "vectors", "__pycache__"}
    folders = {
        p.parent for p in TESTS.rglob("*.py") if not skip.intersection(p.relative_to(TESTS).parts)
    }
    missing = [
        str(f.relative_to(TESTS.parent)) for f in folders if not (f / "__init__.py").is_file()
    ]
    assert missing == [], f"test folders without __init__.py: {missing}"
