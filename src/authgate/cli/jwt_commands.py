"""`authgate jwt …`: sign, verify and inspect JSON Web Tokens (RFC 7519, RFC 8725).

`verify` is `authgate.jose.jwt.decode` on the command line: the caller gives the key and an explicit
algorithm allow-list; the token chooses neither. Each failure has its own exit status (see
`authgate.cli.exit_codes` and docs/cli.md). `inspect` decodes without verifying and says so.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from authgate.cli.durations import duration_option
from authgate.cli.exit_codes import CliError, ExitCode, jose_errors
from authgate.cli.jose_inputs import (
    echo_json,
    json_argument,
    load_key,
    load_key_set,
    parse_timestamp,
    read_password,
    read_token,
)
from authgate.jose import MalformedToken, jwt
from authgate.jose.encoding import b64url_decode, json_object

__all__ = ["jwt_group"]

_TIME_CLAIMS = ("exp", "nbf", "iat")
_UNVERIFIED_WARNING = "UNVERIFIED: the signature was not checked; do not trust this content"


def _now(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:

    return parse_timestamp(value)


_NOW = click.option(
    "--now",
    type=float,
    callback=_now,
    metavar="UNIX_TIME",
    help="evaluate time claims at this instant instead of the clock (tests, forensics)",
)


@click.group("jwt")
def jwt_group() -> None:
    """Sign, verify and inspect JSON Web Tokens."""


@jwt_group.command("sign")
@click.option(
    "--key",
    "key_file",
    required=True,
    metavar="FILE",
    help="private JWK, PEM private key, or oct JWK for HS*; `-` reads stdin",
)
@click.option("--alg", help="signature algorithm (default: the key's `alg`)")
@click.option(
    "--claims",
    default="{}",
    show_default=True,
    metavar="JSON|@FILE|-",
    help="claims as JSON, @FILE, or - for stdin",
)
@click.option(
    "--exp",
    # Whole seconds: `exp` is a NumericDate, written as an integer.
    callback=duration_option(zero=True, whole=True),
    metavar="DURATION",
    help="set exp this far ahead: 30s, 10m, 2h, 7d, 1h30m",
)
@click.option("--iat/--no-iat", default=True, show_default=True, help="set iat to now")
@click.option("--header", metavar="JSON|@FILE", help="extra protected header members")
@click.option("--typ", help="header typ (default JWT), e.g. at+jwt (RFC 9068)")
@click.option("--password-stdin", is_flag=True, help="read the password of a PEM key from stdin")
@_NOW
def jwt_sign(
    *,
    key_file: str,
    alg: str | None,
    claims: str,
    exp: int | None,
    iat: bool,
    header: str | None,
    typ: str | None,
    password_stdin: bool,
    now: float | None,
) -> None:
    """Sign claims and print the compact JWT.

    \b
    Examples:
      authgate jwt sign --key ec.jwk --alg ES256 --claims '{"sub":"alice"}' --exp 10m
      authgate jwt sign --key rsa.pem --alg RS256 --claims @claims.json --typ at+jwt
    """
    stdin_users = [key_file == "-", claims == "-", header == "-", password_stdin]
    if sum(stdin_users) > 1:
        raise click.UsageError(
            "only one of --key, --claims, --header, --password-stdin may read stdin"
        )
    password = read_password() if password_stdin else None
    key = load_key(key_file, password=password)
    alg = alg or key.alg
    if alg is None:
        raise click.UsageError("give --alg (the key is not bound to an algorithm)")
    payload = json_argument(claims, "claims")
    protected = json_argument(header, "header") if header is not None else {}
    if typ is not None:
        if protected.get("typ", typ) != typ:
            raise click.UsageError("--typ conflicts with the typ in --header")
        protected["typ"] = typ
    issued = int(time.time() if now is None else now)
    if iat and "iat" not in payload:
        payload["iat"] = issued
    if exp is not None:
        if "exp" in payload:
            raise click.UsageError("--exp conflicts with the exp in --claims")
        payload["exp"] = issued + exp
    with jose_errors(malformed_is_input=True):
        token = jwt.encode(payload, key, alg, header=protected)
    click.echo(token)


@jwt_group.command("verify")
@click.option("--key", "key_file", metavar="FILE", help="public (or private) JWK or PEM key")
@click.option(
    "--jwks",
    "jwks_file",
    metavar="FILE",
    help="JWK set; the token's kid picks the key by exact match",
)
@click.option(
    "--alg",
    "algorithms",
    multiple=True,
    required=True,
    metavar="ALG",
    help="allowed algorithm; repeat or comma-separate for several",
)
@click.option("--iss", "issuers", multiple=True, help="expected issuer (repeat: any of)")
@click.option("--aud", "audiences", multiple=True, help="expected audience (repeat: any of)")
@click.option(
    "--leeway",
    callback=duration_option(zero=True),
    default="0",
    show_default=True,
    metavar="DURATION",
    help="clock skew allowed for exp, nbf and iat",
)
@click.option("--typ", help="required header typ, e.g. at+jwt")
@click.option(
    "--require",
    "required",
    multiple=True,
    metavar="CLAIM",
    help="claim that must be present (repeatable)",
)
@_NOW
@click.argument("token")
def jwt_verify(
    *,
    key_file: str | None,
    jwks_file: str | None,
    algorithms: tuple[str, ...],
    issuers: tuple[str, ...],
    audiences: tuple[str, ...],
    leeway: float,
    typ: str | None,
    required: tuple[str, ...],
    now: float | None,
    token: str,
) -> None:
    """Verify TOKEN (`-`: stdin) and print its claims as JSON.

    On failure, prints the reason on stderr and exits with a status that names it:
    3 key/input, 4 malformed, 5 algorithm, 6 no matching key, 7 bad signature, 8 expired,
    9 not yet valid, 10 claim (iss, aud, typ, required).

    \b
    Example:
      authgate jwt verify --jwks jwks.json --alg RS256 --alg ES256 \\
          --iss https://issuer.example --aud api TOKEN
    """
    if (key_file is None) == (jwks_file is None):
        raise click.UsageError("give exactly one of --key and --jwks")
    if sum([key_file == "-", jwks_file == "-", token == "-"]) > 1:
        raise click.UsageError("only one input may read stdin")
    allowed = [a for value in algorithms for a in value.split(",") if a]
    if not allowed:
        raise click.UsageError("--alg needs at least one algorithm name")
    key = load_key(key_file) if key_file is not None else load_key_set(str(jwks_file))
    raw_token = read_token(token)
    with jose_errors():
        claims = jwt.decode(
            raw_token,
            key,
            algorithms=allowed,
            issuer=_one_or_many(issuers),
            audience=_one_or_many(audiences),
            leeway=leeway,
            required=required,
            typ=typ,
            now=now,
        )
    echo_json(claims)


def _one_or_many(values: tuple[str, ...]) -> str | tuple[str, ...] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@jwt_group.command("inspect")
@click.argument("token")
def jwt_inspect(token: str) -> None:
    """Print the header and claims of TOKEN (`-`: stdin) WITHOUT verifying anything.

    The output is marked "status": "UNVERIFIED" and a warning goes to stderr. For an encrypted
    token (JWE) only the header is shown.
    """
    out = _decode_unverified(read_token(token))
    click.echo(f"warning: {_UNVERIFIED_WARNING}", err=True)
    echo_json(out)


def _decode_unverified(token: str) -> dict[str, Any]:

    segments = token.split(".")
    if len(segments) not in (3, 5):
        raise CliError(
            "a compact token has 3 (JWS) or 5 (JWE) segments (ERR_JOSE_MALFORMED)",
            ExitCode.MALFORMED,
        )
    out: dict[str, Any] = {"status": "UNVERIFIED"}
    with jose_errors():
        # Both compact forms start with the protected header (RFC 7515 §7.1, RFC 7516 §7.1).
        header = json_object(b64url_decode(segments[0], "header"), "header")
        if len(segments) == 5:
            out.update(format="JWE", header=header, note="encrypted: the payload is not shown")
            return out
        out.update(format="JWS", header=header)
        if header.get("b64") is False:  # RFC 7797 unencoded payload
            out["payload"] = segments[1]
            return out
        try:
            # No size limit beyond the input's own (read_token).
            claims = jwt.peek(token, max_size=len(token)).claims
        except MalformedToken:
            # Not a JWT: a payload that is base64url but not a JSON object is shown as text.
            payload = b64url_decode(segments[1], "payload")
            out["payload"] = payload.decode("utf-8", "backslashreplace")
            return out
    out["claims"] = claims
    times = {name: _utc(claims[name]) for name in _TIME_CLAIMS if name in claims}
    out["times"] = {name: value for name, value in times.items() if value is not None}
    return out


def _utc(value: object) -> str | None:
    """A NumericDate as ISO 8601 UTC, or None when it is not a plausible one."""
    if type(value) not in (int, float):
        return None
    try:
        moment = datetime.fromtimestamp(value, UTC)  # type: ignore[arg-type]
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat().replace("+00:00", "Z")
