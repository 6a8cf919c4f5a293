"""Reading what the JOSE commands are given: key files, JSON arguments and tokens.

Every input may be hostile. Files and stdin are read with a size cap; keys, claims and headers go
through the strict parsers of `authgate.jose` (duplicate member names rejected); a bad input becomes
a one-line `CliError` that names the input, never its content, so no secret reaches the terminal.
A PEM is never read as an HMAC secret: `oct` keys come only from JWK JSON (RFC 8725 §3.1).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click

from authgate.cli.exit_codes import CliError, ExitCode, jose_errors
from authgate.jose import JWK, InvalidKey, JWKSet, MalformedToken
from authgate.jose.encoding import json_object

__all__ = [
    "MAX_INPUT_BYTES",
    "echo_json",
    "json_argument",
    "load_key",
    "load_key_set",
    "parse_json_object",
    "parse_keys",
    "parse_timestamp",
    "pem_key",
    "read_input",
    "read_password",
    "read_token",
]

MAX_INPUT_BYTES = 1024 * 1024


def read_input(source: str, what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of file `source` (`-` for stdin), at most `limit` of them."""
    try:
        if source == "-":
            if sys.stdin is None:
                raise CliError(f"cannot read {what}: no stdin", ExitCode.INPUT)
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise CliError(f"cannot read {what} {source!r}: {exc.strerror}", ExitCode.INPUT) from None
    if len(data) > limit:
        raise CliError(f"{what} is larger than {limit} bytes", ExitCode.INPUT)
    return data


def read_password() -> bytes:
    """A PEM password: the first line of stdin, without its line ending."""
    line = read_input("-", "password", limit=4096).splitlines()
    if not line or not line[0]:
        raise CliError("no password on stdin", ExitCode.INPUT)
    return line[0]


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """A strict JSON object (UTF-8, no duplicate members), or a `CliError` naming `what`."""
    try:
        return json_object(data, what)
    except MalformedToken as exc:
        raise CliError(str(exc), ExitCode.INPUT) from None


def json_argument(value: str, what: str) -> dict[str, Any]:
    """A JSON object given inline, as `@FILE`, or as `-` (stdin)."""
    if value == "-":
        data = read_input("-", what)
    elif value.startswith("@"):
        data = read_input(value[1:], what)
    else:
        # surrogatepass: bytes of a non-UTF-8 argv come back and fail the strict decoder.
        data = value.encode("utf-8", "surrogatepass")
    return parse_json_object(data, what)


def parse_keys(data: bytes, *, password: bytes | None = None) -> JWK | JWKSet:
    """A key (JWK JSON or PEM) or a key set (JWKS JSON) from the bytes of a key file."""
    if b"-----BEGIN " in data:
        return pem_key(data, password)
    if password is not None:
        raise CliError("--password-stdin applies to PEM keys only", ExitCode.USAGE)
    if not data.lstrip().startswith(b"{"):
        raise CliError("the key file is neither a JWK (JSON) nor a PEM key", ExitCode.INPUT)
    obj = parse_json_object(data, "key file")
    with jose_errors():
        return JWKSet.from_dict(obj) if "keys" in obj else JWK.from_dict(obj)


def load_key(source: str, *, password: bytes | None = None) -> JWK:
    """One key from a JWK (JSON) or PEM file (`-`: stdin)."""
    key = parse_keys(read_input(source, "key file"), password=password)
    if isinstance(key, JWKSet):
        raise CliError("the key file holds a key set (JWKS); give one key", ExitCode.INPUT)
    return key


def load_key_set(source: str) -> JWKSet:
    """A key set from a JWKS file; a lone JWK or PEM key is taken as a set of one.

    Members this library cannot use are skipped (RFC 7517 §5) with a warning on stderr.
    """
    keys = parse_keys(read_input(source, "key set file"))
    if isinstance(keys, JWK):
        return JWKSet([keys])
    if not len(keys):
        raise CliError("the key set holds no usable key", ExitCode.INPUT)
    if keys.skipped:
        click.echo(f"warning: skipped {keys.skipped} unusable key(s) in the key set", err=True)
    return keys


def pem_key(
    data: bytes,
    password: bytes | None,
    *,
    kid: str | None = None,
    alg: str | None = None,
    use: str | None = None,
) -> JWK:
    """A key from PEM bytes (private key, public key or certificate), decrypted with `password`."""
    encrypted = b"ENCRYPTED" in data
    if encrypted and password is None:
        raise CliError("the PEM key is encrypted: pass --password-stdin", ExitCode.INPUT)
    if password is not None and not encrypted:
        raise CliError("the PEM key is not encrypted: drop --password-stdin", ExitCode.USAGE)
    with jose_errors():
        try:
            return JWK.from_pem(data, password, kid=kid, alg=alg, use=use)
        except InvalidKey as exc:
            if password is None:
                raise
            raise InvalidKey(f"{exc} (or the password is wrong)") from None


def read_token(argument: str) -> str:
    """The token argument, or stdin for `-`, without surrounding whitespace."""
    raw = read_input("-", "token") if argument == "-" else argument.encode("utf-8", "surrogatepass")
    token = raw.strip()
    if not token:
        raise CliError("no token given", ExitCode.MALFORMED)
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        raise CliError("token is not ASCII (ERR_JOSE_MALFORMED)", ExitCode.MALFORMED) from None


def parse_timestamp(value: float | None) -> float | None:
    """Validate a `--now` value (seconds since the epoch)."""
    if value is not None and (not math.isfinite(value) or not 0 <= value < 2**53):
        raise click.BadParameter("--now must be a Unix time in seconds")
    return value


def echo_json(value: object) -> None:
    """Print `value` as indented JSON, non-ASCII escaped: no terminal control reaches the tty."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=True))
