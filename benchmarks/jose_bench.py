"""JWS sign and verify throughput: authgate vs PyJWT, joserfc and the raw `cryptography` primitive.

    .venv/bin/python benchmarks/jose_bench.py            # full run, ~2 minutes on an idle machine
    .venv/bin/python benchmarks/jose_bench.py --quick    # a rough table in seconds
    .venv/bin/python benchmarks/jose_bench.py --json     # machine-readable results

Every implementation signs the same claims and verifies the same token with full claim validation
(signature, `exp` required and checked, `iss`, `aud`). "raw" is the bare primitive on that token's
signing input and signature (RSA: `public_key.verify(sig, signing_input, padding, hash)`; ECDSA:
R||S to DER then verify; HMAC: `hmac.HMAC(...).update(...).verify(...)`), the ceiling any JOSE
library can reach. All implementations run in one process pinned to one CPU, in interleaved rounds
(the order rotates each round), and each figure is the median over rounds, so machine noise hits all
of them alike. A share is the implementation's rate over the raw rate measured in the same round,
median over rounds. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from authgate.jose import JWK
from authgate.jose import jwt as ag_jwt

ALGORITHMS = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "ES256K",
    "EdDSA",
)
IMPLEMENTATIONS = ("raw", "authgate", "PyJWT", "joserfc")
# The goal for authgate's verify rate as a share of raw: a JWT check should cost little beyond the
# primitive itself (HS256's is lower: its primitive is so cheap that parsing and claims dominate).
GOALS = {"RS256": 0.80, "ES256": 0.90, "EdDSA": 0.92, "HS256": 0.25}
ISSUER = "https://issuer.example"
AUDIENCE = "api://orders"

Op = Callable[[], object]


@dataclass
class Subject:
    """One algorithm: its keys, the token every verifier checks, and the operations to time."""

    alg: str
    key: JWK
    token: str
    sign: dict[str, Op] = field(default_factory=dict)
    verify: dict[str, Op] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


# -- the subjects ----------------------------------------------------------------------------


def make_keys() -> dict[str, JWK]:
    """One key per algorithm; RS* and PS* share one RSA-2048 key, as a deployment would."""
    rsa_key = JWK.generate("RSA", size=2048)
    keys: dict[str, JWK] = {}
    for alg in ALGORITHMS:
        if alg.startswith("HS"):
            keys[alg] = JWK.generate("oct", size=int(alg[2:]))
        elif alg[:2] in ("RS", "PS"):
            keys[alg] = rsa_key
        elif alg == "EdDSA":
            keys[alg] = JWK.generate("OKP", crv="Ed25519")
        else:
            crv = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}
            keys[alg] = JWK.generate("EC", crv=crv[alg])
    return keys


def claims_at(now: int, **changes: object) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": "user-1234",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "scope": "orders:read orders:write",
        **changes,
    }


def _secret(key: JWK) -> bytes:
    k = key.to_dict(private=True)["k"]
    return base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))


def _hash(alg: str) -> hashes.HashAlgorithm:
    bits = "256" if alg in ("EdDSA", "ES256K") else alg[-3:]
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[bits]


def raw_ops(alg: str, key: JWK, token: str) -> tuple[Op, Op]:
    """The bare primitive: sign the token's signing input, verify its signature."""
    head, _, sig_b64 = token.rpartition(".")
    signing_input = head.encode("ascii")
    signature = base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))
    digest = _hash(alg)
    if alg.startswith("HS"):
        secret = _secret(key)

        def hs_sign() -> bytes:
            mac = hmac.HMAC(secret, digest)
            mac.update(signing_input)
            return mac.finalize()

        def hs_verify() -> None:
            mac = hmac.HMAC(secret, digest)
            mac.update(signing_input)
            mac.verify(signature)

        return hs_sign, hs_verify
    private: Any = serialization.load_pem_private_key(key.to_pem(private=True), None)
    public: Any = private.public_key()
    if alg.startswith(("RS", "PS")):
        pad: Any = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(padding.MGF1(digest), salt_length=digest.digest_size)
        )
        return (
            lambda: private.sign(signing_input, pad, digest),
            lambda: public.verify(signature, signing_input, pad, digest),
        )
    if alg == "EdDSA":
        return lambda: private.sign(signing_input), lambda: public.verify(signature, signing_input)
    size = len(signature) // 2
    scheme = ec.ECDSA(digest)

    def es_sign() -> bytes:
        r, s = decode_dss_signature(private.sign(signing_input, scheme))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def es_verify() -> None:
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        public.verify(encode_dss_signature(r, s), signing_input, scheme)

    return es_sign, es_verify


def authgate_ops(alg: str, key: JWK, claims: dict[str, Any]) -> tuple[Op, Callable[[str], Op]]:
    public = key if key.kty == "oct" else key.public()
    algorithms = [alg]

    def verifier(token: str) -> Op:
        return lambda: ag_jwt.decode(
            token,
            public,
            algorithms=algorithms,
            issuer=ISSUER,
            audience=AUDIENCE,
            required=("exp",),
        )

    return lambda: ag_jwt.encode(claims, key, alg), verifier


def pyjwt_ops(alg: str, key: JWK, claims: dict[str, Any]) -> tuple[Op, Callable[[str], Op]]:
    import jwt  # noqa: PLC0415 - a peer is optional; a missing one becomes "n/a"

    if key.kty == "oct":
        signing: Any = _secret(key)
        verifying: Any = signing
    else:
        signing = serialization.load_pem_private_key(key.to_pem(private=True), None)
        verifying = signing.public_key()
    headers = {"kid": key.kid}
    algorithms = [alg]
    options: Any = {"require": ["exp", "iss", "aud"]}

    def verifier(token: str) -> Op:
        return lambda: jwt.decode(
            token,
            verifying,
            algorithms=algorithms,
            audience=AUDIENCE,
            issuer=ISSUER,
            options=options,
        )

    return lambda: jwt.encode(claims, signing, algorithm=alg, headers=headers), verifier


def joserfc_ops(alg: str, key: JWK, claims: dict[str, Any]) -> tuple[Op, Callable[[str], Op]]:
    from joserfc import jwt  # noqa: PLC0415
    from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey  # noqa: PLC0415

    kind: Any = {"oct": OctKey, "RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[key.kty]
    if key.kty == "oct":
        signing = verifying = kind.import_key(_secret(key))
    else:
        signing = kind.import_key(key.to_pem(private=True))
        verifying = kind.import_key(key.to_pem())
    header = {"alg": alg, "kid": key.kid}
    algorithms = [alg]  # naming the algorithm also enables joserfc's "not recommended" ones
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )

    def verifier(token: str) -> Op:
        def verify() -> object:
            decoded = jwt.decode(token, verifying, algorithms=algorithms)
            registry.validate(decoded.claims)
            return decoded.claims

        return verify

    return lambda: jwt.encode(header, claims, signing, algorithms=algorithms), verifier


PEERS = {"authgate": authgate_ops, "PyJWT": pyjwt_ops, "joserfc": joserfc_ops}


def build(alg: str, key: JWK, now: int) -> Subject:
    """Set up every implementation for `alg` and check that each one really validates claims."""
    claims = claims_at(now)
    token = ag_jwt.encode(claims, key, alg)
    subject = Subject(alg, key, token)
    subject.sign["raw"], subject.verify["raw"] = raw_ops(alg, key, token)
    bad_tokens = {
        "wrong aud": ag_jwt.encode(claims_at(now, aud="api://other"), key, alg),
        "wrong iss": ag_jwt.encode(claims_at(now, iss="https://evil.example"), key, alg),
        "expired": ag_jwt.encode(claims_at(now - 7200), key, alg),
        "no exp": ag_jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key, alg),
    }
    for name, factory in PEERS.items():
        try:
            sign, verifier = factory(alg, key, claims)
            produced = sign()
            verifier(token)()
        except Exception as exc:
            if name == "authgate":
                raise
            subject.unavailable[name] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        for label, bad in bad_tokens.items():
            if not _rejects(verifier(bad)):
                raise SystemExit(f"{name} accepted a token with {label} for {alg}: not comparable")
        # What each implementation signs must verify in authgate: they do the same job.
        ag_jwt.decode(
            str(produced),
            key if key.kty == "oct" else key.public(),
            algorithms=[alg],
            issuer=ISSUER,
            audience=AUDIENCE,
        )
        subject.sign[name] = sign
        subject.verify[name] = verifier(token)
    return subject


def _rejects(verify: Op) -> bool:
    try:
        verify()
    except Exception:  # each peer raises its own error type
        return True
    return False


# -- timing ----------------------------------------------------------------------------------


def calibrate(fn: Op, batch_time: float) -> int:
    """How many calls of `fn` take about `batch_time` seconds (at least one)."""
    n = 1
    while True:
        start = time.process_time()
        for _ in repeat(None, n):
            fn()
        elapsed = time.process_time() - start
        if elapsed >= batch_time / 4 or n >= 1 << 22:
            return max(1, round(n * batch_time / max(elapsed, 1e-9)))
        n *= 4


def timed(fn: Op, n: int) -> float:
    """Operations per CPU second over `n` calls.

    CPU time of this process (`time.process_time`), not wall time: time spent descheduled while
    other processes use the CPU does not count, so a busy machine slows no one in particular.
    """
    gc.collect()
    start = time.process_time()
    for _ in repeat(None, n):
        fn()
    return n / max(time.process_time() - start, 1e-9)


def measure(
    subjects: list[Subject], rounds: int, batch_time: float
) -> dict[tuple[str, str, str], list[float]]:
    """Rates per (alg, op, implementation), one per round; implementations interleave."""
    rates: dict[tuple[str, str, str], list[float]] = {}
    for subject in subjects:
        for op, table in (("sign", subject.sign), ("verify", subject.verify)):
            names = [name for name in IMPLEMENTATIONS if name in table]
            counts = {name: calibrate(table[name], batch_time) for name in names}
            for round_no in range(rounds):
                shift = round_no % len(names)
                for name in names[shift:] + names[:shift]:
                    rates.setdefault((subject.alg, op, name), []).append(
                        timed(table[name], counts[name])
                    )
    return rates


def pin_cpu(requested: int | None) -> int | None:
    """Pin this process to one CPU (the last one allowed, unless told); None when not possible."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if requested is None else requested
    os.sched_setaffinity(0, {cpu})
    return cpu


# -- report ----------------------------------------------------------------------------------


def summarize(
    subjects: list[Subject], rates: dict[tuple[str, str, str], list[float]]
) -> list[dict[str, Any]]:
    rows = []
    for subject in subjects:
        for op in ("sign", "verify"):
            raw = rates[(subject.alg, op, "raw")]
            row: dict[str, Any] = {"alg": subject.alg, "op": op, "results": {}}
            for name in IMPLEMENTATIONS:
                samples = rates.get((subject.alg, op, name))
                if samples is None:
                    row["results"][name] = {
                        "ops_per_s": None,
                        "reason": subject.unavailable.get(name, "n/a"),
                    }
                    continue
                median = statistics.median(samples)
                # The share is paired by round (both rates measured moments apart), then the
                # median is taken: a load change between rounds cancels out of each ratio.
                share = statistics.median(a / b for a, b in zip(samples, raw, strict=True))
                row["results"][name] = {
                    "ops_per_s": round(median, 1),
                    "share_of_raw": round(share, 4),
                    "spread": round((max(samples) - min(samples)) / median, 4),
                }
            goal = GOALS.get(subject.alg) if op == "verify" else None
            if goal is not None:
                share = row["results"]["authgate"]["share_of_raw"]
                row["goal"] = {"authgate_share_at_least": goal, "met": share >= goal}
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    head = [
        "alg",
        "op",
        *(f"{n} ops/s (% raw)" if n != "raw" else "raw ops/s" for n in IMPLEMENTATIONS),
        "goal: authgate",
    ]
    lines = []
    for row in rows:
        cells = [row["alg"], row["op"]]
        for name in IMPLEMENTATIONS:
            result = row["results"][name]
            if result["ops_per_s"] is None:
                cells.append("n/a")
            elif name == "raw":
                cells.append(f"{result['ops_per_s']:,.0f}")
            else:
                cells.append(f"{result['ops_per_s']:,.0f} ({result['share_of_raw'] * 100:.0f} %)")
        goal = row.get("goal")
        if goal is None:
            cells.append("")
        else:
            # One decimal here: a share shown as "90 %" may be 89.96 %, below a 90 % goal.
            share = row["results"]["authgate"]["share_of_raw"] * 100
            target = goal["authgate_share_at_least"] * 100
            verdict = (
                f"✓ {share:.1f} % ≥ {target:.0f} %"
                if goal["met"]
                else (f"✗ {share:.1f} % < {target:.0f} %")
            )
            cells.append(verdict)
        lines.append(cells)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    pinned = f"CPU {meta['cpu']}" if meta["cpu"] is not None else "not pinned"
    title = (
        f"JWS sign/verify with claim validation (exp, iss, aud): median of {meta['rounds']} "
        f"interleaved rounds, {pinned}, Python {meta['python']}, cryptography "
        f"{meta['versions']['cryptography']}, PyJWT {meta['versions']['PyJWT']}, joserfc "
        f"{meta['versions']['joserfc']}"
    )
    notes = [f"- {name} n/a for {', '.join(algs)}" for name, algs in meta["unavailable"].items()]
    return "\n".join(
        [title, "", fmt(head), rule, *map(fmt, lines), *(["", *notes] if notes else [])]
    )


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 short rounds: a rough table fast")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15, quick 5)")
    parser.add_argument(
        "--batch-time", type=float, help="seconds per timed batch (default 0.05, quick 0.01)"
    )
    parser.add_argument("--alg", action="append", choices=ALGORITHMS, help="only these (repeat)")
    parser.add_argument("--cpu", type=int, help="CPU to pin to (default: the last allowed one)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 15)
    batch_time = args.batch_time or (0.01 if args.quick else 0.05)
    if rounds < 1 or batch_time <= 0:
        parser.error("--rounds and --batch-time must be positive")

    warnings.simplefilter("ignore")  # peers' deprecation notices (e.g. EdDSA) are not results
    cpu = pin_cpu(args.cpu)
    algs = args.alg or list(ALGORITHMS)
    keys = make_keys()
    now = int(time.time())
    subjects = [build(alg, keys[alg], now) for alg in algs]
    rates = measure(subjects, rounds, batch_time)
    unavailable: dict[str, list[str]] = {}
    for subject in subjects:
        for name in subject.unavailable:
            unavailable.setdefault(name, []).append(subject.alg)
    meta = {
        "cpu": cpu,
        "rounds": rounds,
        "batch_time_s": batch_time,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "versions": {d: _version(d) for d in ("authgate", "cryptography", "PyJWT", "joserfc")},
        "unavailable": unavailable,
    }
    rows = summarize(subjects, rates)
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
    else:
        print(render(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
