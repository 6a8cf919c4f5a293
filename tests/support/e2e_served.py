"""A real `authgate serve` process on a free loopback port for the end-to-end tests, set up
like `support.e2e.Flow`: an API, a confidential web client with loopback redirect and
post-logout URIs, a public native client with the device grant, and a user. The headless
browser and the independent clients talk to it."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import psycopg

from authgate.server import admin
from authgate.server.auth_server import open_storage
from authgate.server.config import Config
from authgate.server.config_loader import load_config
from authgate.server.models import Client
from authgate.server.secret_key import ServerSecret
from tests.support.e2e import (
    API,
    DEVICE_GRANT,
    LOOPBACK_CALLBACK,
    LOOPBACK_SIGNED_OUT,
    NATIVE_REDIRECT,
    PASSWORD,
    USERNAME,
    WEB_REDIRECT,
    only_form,
    pkce_pair,
)
from tests.support.server_harness import PG_ADMIN, free_port, wait_ready

AUTHGATE = str(Path(sys.executable).parent / "authgate")


@dataclass
class Served:
    """An `authgate serve` process and what was registered in it."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    env: dict[str, str]
    config: Config
    web: Client
    web_secret: str
    native: Client
    pg_database: str | None
    log: Path

    @classmethod
    def start(
        cls,
        database_url: str | None,
        workdir: Path,
        *,
        workers: int = 1,
        extra_config: str = "",
        issuer_path: str = "",
    ) -> Served:
        """Start a server on a fresh database (`database_url` None: a new PostgreSQL database);
        `extra_config` is TOML appended to the configuration file; `issuer_path` ("/tenant1")
        makes the issuer `url + issuer_path`."""
        pg_database = None
        if database_url is None:
            pg_database = f"authgate_e2e_{secrets.token_hex(6)}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{pg_database}"')
            database_url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config_path = workdir / "authgate.toml"
        config_path.write_text(
            '[keys]\nalgorithms = ["RS256", "ES256"]\n[http]\ncache_ttl = 0\n'
            "[device]\ninterval = 1\n" + extra_config,  # devices poll every second: quick tests
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "AUTHGATE_CONFIG": str(config_path),
            "AUTHGATE_ISSUER": url + issuer_path,
            "AUTHGATE_DATABASE_URL": database_url,
            "AUTHGATE_SECRET_KEY": secrets.token_urlsafe(32),
        }
        config = load_config(None, env)
        subprocess.run(
            [AUTHGATE, "db", "upgrade"], env=env, cwd=workdir, check=True, capture_output=True
        )
        web, web_secret, native = asyncio.run(_register(config))
        log = workdir / "serve.log"
        process = subprocess.Popen(
            # JSON lines: the suite's fixture scans them for credentials (e2e_log_scan).
            [
                AUTHGATE,
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-format",
                "json",
            ],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        wait_ready(url + issuer_path, process, log)  # OIDC Discovery §4 appends the well-known
        return cls(url, process, workdir, env, config, web, web_secret, native, pg_database, log)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.pg_database is not None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')

    def sign_in_and_approve(self, url: str, username: str = USERNAME) -> str:
        """Follow an authorization URL as a user would (sign in, approve); return the redirect to
        the client, which is not visited (the test plays the client)."""
        with httpx.Client(base_url=self.url, timeout=10) as browser:
            response = browser.get(url)
            for _ in range(3):
                if response.status_code == 303:
                    return response.headers["location"]
                assert response.status_code == 200, response.text
                form = only_form(response)
                fields = dict(form.fields)
                if form.action.endswith("/login"):
                    fields.update(username=username, password=PASSWORD)
                else:
                    fields.update(approve="approve")
                response = browser.post(urlsplit(form.action).path, data=fields)
        raise AssertionError(response.text)

    def web_tokens(self, scope: str = "openid offline_access read") -> dict[str, Any]:
        """Tokens for the web client through the code flow (loopback redirect, state, PKCE)."""
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.web.client_id,
            "redirect_uri": LOOPBACK_CALLBACK,
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        callback = self.sign_in_and_approve("/authorize?" + urlencode(params))
        code = parse_qs(urlsplit(callback).query)["code"][0]
        response = httpx.post(
            self.url + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": LOOPBACK_CALLBACK,
                "code_verifier": verifier,
            },
            auth=(self.web.client_id, self.web_secret),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def approve_device(self, user_code: str) -> None:
        """A user enters `user_code` on the device page and allows the device."""
        with httpx.Client(base_url=self.url, timeout=10) as browser:
            login = only_form(browser.get("/device", params={"user_code": user_code}))
            fields = {**dict(login.fields), "username": USERNAME, "password": PASSWORD}
            confirm = browser.post("/login", data=fields)
            assert "Allow" in confirm.text, confirm.text
            done = browser.post("/device", data={**dict(only_form(confirm).fields), "approve": "1"})
            assert "Device connected" in done.text, done.text

    def run(self, coroutine_factory: Any) -> Any:
        """Run `coroutine_factory(storage)` against the server's database (setup, inspection)."""

        async def main() -> Any:
            storage = await open_storage(self.config)
            try:
                return await coroutine_factory(storage)
            finally:
                await storage.close()

        return asyncio.run(main())


async def _register(config: Config) -> tuple[Client, str, Client]:
    storage = await open_storage(config)
    secret = ServerSecret(config.secret_key)
    now = int(time.time())
    try:
        await admin.create_api(
            storage, config, identifier=API, scopes=("read", "write"), name="Orders API", now=now
        )
        web, web_secret = await admin.create_client(
            storage,
            secret,
            name="Web App",
            grant_types=("authorization_code", "refresh_token"),
            scopes=("read", "write"),
            redirect_uris=(WEB_REDIRECT, LOOPBACK_CALLBACK),
            # RP-initiated logout back to a loopback page (any port, like redirect URIs).
            post_logout_redirect_uris=(LOOPBACK_SIGNED_OUT,),
            now=now,
        )
        native, _ = await admin.create_client(
            storage,
            secret,
            name="Native App",
            grant_types=("authorization_code", "refresh_token", DEVICE_GRANT),
            scopes=("read",),
            auth_method="none",
            redirect_uris=(NATIVE_REDIRECT,),
            now=now,
        )
        await admin.create_user(
            storage,
            username=USERNAME,
            password=PASSWORD,
            email="alice@example.test",
            name="Alice Liddell",
            now=now,
        )
    finally:
        await storage.close()
    assert web_secret is not None
    return web, web_secret, native
