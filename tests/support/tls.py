"""A test certificate authority and an https origin on loopback that serves what a test says:
for the server's outbound fetches (`authgate.server.outbound`), which verify TLS like production.

```python
ca = TestCA(tmp_path)                       # ca.ca_file: the PEM to trust
with HttpsOrigin(ca, ["client.example.test", "localhost"]) as origin:
    origin.routes["/doc"] = json_route({"a": 1})
    origin.port, origin.hits["/doc"]
```
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["HttpsOrigin", "Route", "TestCA", "drip_route", "flood_route", "json_route", "raw_route"]

# A route writes the whole response through the handler.
Route = Callable[[BaseHTTPRequestHandler], None]


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


class TestCA:
    """A CA made for one test run; `issue` signs server certificates for host names."""

    __test__ = False  # not a test class

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name("authgate test CA"))
            .issuer_name(_name("authgate test CA"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = directory / "test-ca.pem"
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def server_context(self, hostnames: Sequence[str]) -> ssl.SSLContext:
        """A server context with a certificate for `hostnames` (names or IP addresses), signed by
        this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hostnames[0]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([_san(h) for h in hostnames]), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        stem = self.directory / f"server-{x509.random_serial_number()}"
        cert_file, key_file = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context


def json_route(document: Any, *, headers: dict[str, str] | None = None) -> Route:
    """A 200 with `document` as JSON (and `headers`)."""
    return raw_route(200, json.dumps(document).encode(), headers=headers)


def raw_route(status: int, body: bytes = b"", *, headers: dict[str, str] | None = None) -> Route:
    """`status` with `body` and `headers` (Content-Length added)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return route


def drip_route(handler: BaseHTTPRequestHandler) -> None:
    """A byte every 0.1 s for a minute: each read is quick, the whole is not."""
    handler.send_response(200)
    handler.send_header("Content-Length", "600")
    handler.end_headers()
    for _ in range(600):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.1)


def flood_route(size: int) -> Route:
    """`size` bytes with no Content-Length (the body ends when the connection closes)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        chunk = b" " * 65536
        for _ in range(size // len(chunk)):
            handler.wfile.write(chunk)

    return route


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that give up early (size and time limits) are expected here


class HttpsOrigin:
    """An https server on 127.0.0.1 with a certificate for `hostnames` from `ca`."""

    def __init__(self, ca: TestCA, hostnames: Sequence[str]) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                route = outer.routes.get(self.path) or raw_route(404, b"{}")
                route(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        context = ca.server_context(hostnames)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> HttpsOrigin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
