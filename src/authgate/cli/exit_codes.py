"""Exit codes and one-line errors for the `authgate` commands (`jwk`, `jwt`, and the server's).

Each `authgate.jose` error maps, by its stable `code`, to its own exit status, so that scripts can
tell an expired token from a forged one without parsing messages. Messages are made single-line and
bounded before they are printed: parts of them may come from a hostile token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import click

from authgate.jose import InvalidClaim, JoseError

__all__ = ["CliError", "ExitCode", "jose_errors", "one_line"]

_MAX_MESSAGE = 300


class ExitCode(IntEnum):
    """The exit statuses of the commands (documented in docs/cli.md)."""

    OK = 0
    ERROR = 1  # any other failure
    USAGE = 2  # click's status for a bad command line
    INPUT = 3  # a key, claims or header input is unreadable, malformed or unusable
    MALFORMED = 4  # the token does not follow the serialization rules
    ALGORITHM = 5  # the token's algorithm is not allowed or not supported
    KEY_NOT_FOUND = 6  # no key in the set matches the token's kid and algorithm
    SIGNATURE = 7  # the signature did not verify
    EXPIRED = 8  # exp has passed
    NOT_YET_VALID = 9  # nbf (or iat) lies in the future
    CLAIM = 10  # iss, aud, typ, a required claim or a claim's type is wrong
    # The server's and the gateway's commands (sysexits.h values).
    DATABASE = 69  # the database is unreachable, missing, refuses us, or its schema is wrong
    LISTEN = 71  # the address to listen on is taken or not allowed
    CONFIG = 78  # the configuration (file, environment, secret key) is unreadable or invalid


_BY_JOSE_CODE = {
    "ERR_JOSE_MALFORMED": ExitCode.MALFORMED,
    "ERR_JOSE_ALG_NOT_ALLOWED": ExitCode.ALGORITHM,
    "ERR_JOSE_INVALID_KEY": ExitCode.INPUT,
    "ERR_JOSE_KEY_NOT_FOUND": ExitCode.KEY_NOT_FOUND,
    "ERR_JOSE_SIGNATURE_INVALID": ExitCode.SIGNATURE,
    "ERR_JWT_EXPIRED": ExitCode.EXPIRED,
    "ERR_JWT_NOT_YET_VALID": ExitCode.NOT_YET_VALID,
    "ERR_JWT_CLAIM_INVALID": ExitCode.CLAIM,
}


def one_line(message: str) -> str:
    """`message` with control and other non-printable characters replaced, cut to a safe length."""
    text = "".join(ch if ch.isprintable() else "?" for ch in message)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class CliError(click.ClickException):
    """A failure reported as one `Error: …` line on stderr with a specific exit status."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(one_line(message))
        # click declares `exit_code` a ClassVar; an instance value is what `main` reads.
        vars(self)["exit_code"] = int(exit_code)


@contextmanager
def jose_errors(*, malformed_is_input: bool = False) -> Iterator[None]:
    """Turn an `authgate.jose` error raised inside the block into a `CliError`.

    With `malformed_is_input=True` a `MalformedToken` blames the caller's input (a header or claims
    given on the command line) rather than a token.
    """
    try:
        yield
    except JoseError as exc:
        status = _BY_JOSE_CODE.get(exc.code, ExitCode.ERROR)
        if malformed_is_input and status is ExitCode.MALFORMED:
            status = ExitCode.INPUT
        message = str(exc)
        if isinstance(exc, InvalidClaim):
            message = f"claim {exc.claim!r}: {message}"
        raise CliError(f"{message} ({exc.code})", status) from None
