"""`authgate gateway` start-up failures in a real subprocess: one line on stderr, no traceback,
the exit status docs/cli.md documents."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from authgate.cli.exit_codes import ExitCode
from tests.support.gateway import AUTHGATE

_CONFIG = """
[[issuers]]
issuer = "https://issuer.example"
jwks_uri = "https://issuer.example/jwks.json"
audiences = ["https://api.example.com"]

[[routes]]
path = "/public"
public = true
upstream = "http://127.0.0.1:9"
"""


def _gateway(config: Path, *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [str(AUTHGATE), "gateway", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr.splitlines()


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(_CONFIG)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status, lines = _gateway(config, "--listen", f"127.0.0.1:{port}")
    assert status == ExitCode.LISTEN
    assert lines == [f"Error: cannot listen on 127.0.0.1:{port}: address already in use"]


def test_an_invalid_configuration_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(_CONFIG + "\n[[routes]]\npath = 5\n")
    status, lines = _gateway(config)
    assert status == ExitCode.CONFIG
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: invalid configuration: {config}: routes[1].path")


def test_a_taken_admin_port_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config.write_text(f'[admin]\nlisten = "127.0.0.1:{port}"\n' + _CONFIG)
        status, lines = _gateway(config, "--listen", "127.0.0.1:0")
    assert status == ExitCode.LISTEN
    assert lines == [
        f"Error: cannot listen on 127.0.0.1:{port} (admin.listen): address already in use"
    ]


def test_the_admin_address_cannot_be_the_public_one(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(f'[admin]\nlisten = "127.0.0.1:{port}"\n' + _CONFIG)
    status, lines = _gateway(config, "--listen", f"127.0.0.1:{port}")
    assert status == ExitCode.LISTEN
    assert lines == [
        f"Error: cannot listen on 127.0.0.1:{port} (admin.listen): it is also `listen`"
    ]


def test_an_invalid_admin_address_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[admin]\nlisten = "9100"\n' + _CONFIG)
    status, lines = _gateway(config, "--check")
    assert status == ExitCode.CONFIG
    assert lines == [
        f"Error: invalid configuration: {config}: admin.listen: must be HOST:PORT, such as "
        "127.0.0.1:9100"
    ]
