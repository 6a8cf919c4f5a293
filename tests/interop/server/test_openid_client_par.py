"""openid-client 6 (Node) against a real `authgate serve` on loopback, on SQLite and PostgreSQL:
`buildAuthorizationUrlWithPAR` pushes the request to /par (RFC 9126), the browser carries only
`client_id` and `request_uri`, and the code flow completes with PKCE, `iss` and the ID token
checked by openid-client itself. The sign-in and consent pages are filled in by an HTTP client
playing the user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.e2e import WEB_REDIRECT
from tests.support.e2e_served import Served

_MODULES = Path(__file__).resolve().parents[2] / "node" / "node_modules"


def test_openid_client_pushes_and_completes_the_code_flow(served: Served) -> None:
    if shutil.which("node") is None or not (_MODULES / "openid-client").is_dir():
        pytest.fail("node and tests/node/node_modules are needed: run `cd tests/node && npm ci`")
    recipe_input = {
        "issuer": served.url,
        "client_id": served.web.client_id,
        "client_secret": served.web_secret,
        "redirect_uri": WEB_REDIRECT,
    }
    process = subprocess.Popen(
        ["node", str(Path(__file__).with_name("par_client.mjs"))],
        env={**os.environ, "NODE_MODULES": str(_MODULES), "RECIPE_INPUT": json.dumps(recipe_input)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        url = process.stdout.readline().strip()
        assert url.startswith(served.url + "/authorize?"), url
        callback = served.sign_in_and_approve(url)
        process.stdin.write(callback + "\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome == {
        "front_channel": ["client_id", "request_uri"],
        "token_type": "bearer",
        "scope": "openid read",
        "id_token_sub": "string",
    }
