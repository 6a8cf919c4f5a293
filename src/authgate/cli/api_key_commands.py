"""`authgate api-key …`: make API keys for the gate and the hashes its configuration holds.

The gate's configuration stores `sha256:<hex>` digests, never keys (see docs/gate.md, "API keys").
`new` prints a fresh key with its digest; `hash` reads a key from stdin (never from the command
line, where it would land in shell history and process listings) and prints its digest.
"""

# ruff: noqa: PLC0415 - the verifier (and httpx under it) loads only when a command runs

from __future__ import annotations

import json
import sys

import click

from authgate.cli.exit_codes import CliError, ExitCode

__all__ = ["api_key_group"]

_MIN_KEY_LENGTH = 22  # 128 bits in base64url


@click.group("api-key")
def api_key_group() -> None:
    """Make API keys and their configuration hashes."""


@api_key_group.command("new")
def api_key_new() -> None:
    """Print a new 256-bit API key and its hash as JSON: {"key": …, "hash": "sha256:…"}.

    \b
    Give the key to the client; put the hash in the gate's configuration:
      [[api_keys.keys]]
      hash = "sha256:…"
      subject = "reports-job"
    """
    from authgate.verifier.api_keys import hash_api_key, new_api_key

    key = new_api_key()
    click.echo(json.dumps({"key": key, "hash": hash_api_key(key)}))


@api_key_group.command("hash")
def api_key_hash() -> None:
    """Read an API key from stdin and print its configuration hash (sha256:…)."""
    from authgate.verifier.api_keys import MAX_API_KEY_LENGTH, hash_api_key

    data = sys.stdin.buffer.read(MAX_API_KEY_LENGTH + 3)
    key = data.removesuffix(b"\n").removesuffix(b"\r").decode("ascii", "replace")
    if not key or len(key) > MAX_API_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise CliError("an API key is printable ASCII, 1 to 512 characters", ExitCode.INPUT)
    if len(key) < _MIN_KEY_LENGTH:
        raise CliError(
            "this key is too short to be safe: use `authgate api-key new`", ExitCode.INPUT
        )
    click.echo(hash_api_key(key))
