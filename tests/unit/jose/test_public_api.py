"""The public face of `authgate.jose`, pinned: each public module's `__all__`, exactly.

Changing a list here is an API change (docs/jws.md, docs/jwe.md and the CHANGELOG follow). The
modules whose names start with `_` are the engine: nothing outside `authgate/jose` imports them.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import authgate.jose

PROJECT = Path(__file__).resolve().parents[3]
JOSE_DIR = PROJECT / "src" / "authgate" / "jose"

ERRORS = [
    "AlgorithmNotAllowed",
    "DecryptionFailed",
    "ExpiredToken",
    "InvalidClaim",
    "InvalidKey",
    "InvalidSignature",
    "JoseError",
    "KeyNotFound",
    "MalformedToken",
    "NotYetValid",
]

PUBLIC_API: dict[str, list[str]] = {
    "authgate.jose": ["JWK", "JWKSet", "jwe", "jws", "jwt", *ERRORS],
    "authgate.jose.encoding": ["b64url_decode", "json_object"],
    "authgate.jose.errors": ERRORS,
    "authgate.jose.jwe": ["MAX_TOKEN_SIZE", "DecryptedJWE", "decrypt", "encrypt"],
    "authgate.jose.jwk": [
        "JWK",
        "KeyRequirement",
        "Operation",
        "PrivateKey",
        "PublicKey",
        "algorithms_for",
        "key_requirement",
    ],
    "authgate.jose.jwkset": ["JWKSet"],
    "authgate.jose.jws": [
        "MAX_TOKEN_SIZE",
        "ProtectedHeader",
        "VerifiedJWS",
        "prepared_verifier",
        "sign",
        "verify",
        "verify_compact",
    ],
    "authgate.jose.jwt": [
        "ANY_AUDIENCE",
        "IAT_FUTURE_ALLOWANCE",
        "UnverifiedJWT",
        "decode",
        "decode_nested",
        "encode",
        "encode_nested",
        "peek",
        "validate_claims",
    ],
}


@pytest.mark.parametrize(("name", "expected"), PUBLIC_API.items())
def test_exported_names_are_pinned(name: str, expected: list[str]) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "a name is listed twice"
    assert sorted(exported) == sorted(expected)
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute} is exported but missing"


def test_every_public_module_is_pinned() -> None:
    found = {
        f"authgate.jose.{info.name}"
        for info in pkgutil.iter_modules(authgate.jose.__path__)
        if not info.name.startswith("_")
    }
    assert found == set(PUBLIC_API) - {"authgate.jose"}


def test_documented_imports_work_and_agree() -> None:
    from authgate.jose import JWK, JWKSet, errors, jwe, jwk, jwkset, jws, jwt  # noqa: PLC0415

    assert JWK is jwk.JWK
    assert JWKSet is jwkset.JWKSet
    for name in ERRORS:
        assert getattr(authgate.jose, name) is getattr(errors, name)
    assert (jws.sign, jwe.encrypt, jwt.decode) == (
        authgate.jose.jws.sign,
        authgate.jose.jwe.encrypt,
        authgate.jose.jwt.decode,
    )


def private_jose_imports(root: Path) -> list[str]:
    """`file:line module` for each import of an `authgate.jose._*` module (or of a name from
    one) by a file under `root` that is not itself part of `authgate/jose`. `root` is where
    imports resolve from (`src`): relative imports are resolved against it."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if JOSE_DIR in path.resolve().parents:
            continue
        package = list(path.relative_to(root).parent.parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                source = ".".join([*base, *([node.module] if node.module else [])])
                modules = [source] + [f"{source}.{alias.name}" for alias in node.names]
            found += [
                f"{path.relative_to(root)}:{node.lineno} {module}"
                for module in dict.fromkeys(modules)
                if module.startswith("authgate.jose._")
            ]
    return found


@pytest.mark.parametrize("tree", ["src", "benchmarks"])
def test_nothing_outside_jose_imports_its_engine(tree: str) -> None:
    assert (PROJECT / tree / ("authgate" if tree == "src" else "")).is_dir()
    assert private_jose_imports(PROJECT / tree) == []


def test_the_import_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    # The scan above must be able to fail: every spelling of a private import is found.
    gate = tmp_path / "authgate" / "gate"
    gate.mkdir(parents=True)
    (gate / "a.py").write_text(
        "import authgate.jose._b64\n"
        "from authgate.jose._json import loads_object\n"
        "from authgate.jose import _algorithms, jwt\n"
        "from authgate.jose import jws\n"
        "from ..jose import _signatures\n"
        "from ..jose._key_management import wrap\n"
        "from . import _local\n",
        encoding="utf-8",
    )
    found = private_jose_imports(tmp_path)
    assert [entry.split(":", 1)[1] for entry in found] == [
        "1 authgate.jose._b64",
        "2 authgate.jose._json",
        "2 authgate.jose._json.loads_object",
        "3 authgate.jose._algorithms",
        "5 authgate.jose._signatures",
        "6 authgate.jose._key_management",
        "6 authgate.jose._key_management.wrap",
    ]
