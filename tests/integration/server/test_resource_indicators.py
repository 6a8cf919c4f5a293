"""RFC 8707 in the code flow: the `resource` named at /authorize is the token's audience, /token
may repeat it but not switch it, and a client allowed several APIs must name one (the MCP
authorization specification requires `resource` on both requests)."""

from __future__ import annotations

from tests.support.e2e import API, WEB_REDIRECT, Flow, redirect_params
from tests.support.server_harness import ISSUER

OTHER = "https://mcp.example.test/mcp"


async def two_api_client(flow: Flow) -> tuple[str, str]:
    await flow.harness.create_api(OTHER, scopes=("mcp:tools",), name="MCP server")
    client, secret = await flow.harness.create_client(
        name="MCP client",
        grant_types=("authorization_code", "refresh_token"),
        scopes=(f"{API}#read", f"{OTHER}#mcp:tools"),
        redirect_uris=(WEB_REDIRECT,),
    )
    assert secret is not None
    return client.client_id, secret


async def code_for(flow: Flow, client_id: str, **params: str) -> dict[str, str]:
    request = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": WEB_REDIRECT,
        "state": "s",
        **params,
    }
    return await flow.agent().code_for(**request)


async def test_the_authorized_resource_is_the_audience(flow: Flow) -> None:
    client_id, secret = await two_api_client(flow)
    for resource, scope in ((OTHER, "mcp:tools"), (API, "read")):
        for repeated in (True, False):  # /token may repeat `resource` or leave it out
            sent = await code_for(flow, client_id, scope=scope, resource=resource)
            form = {"grant_type": "authorization_code", "code": sent["code"]}
            form["redirect_uri"] = WEB_REDIRECT
            if repeated:
                form["resource"] = resource
            response = await flow.http.post("/token", data=form, auth=(client_id, secret))
            assert response.status_code == 200, response.text
            token = response.json()["access_token"]
            info = await flow.http.post(
                "/introspect", data={"token": token}, auth=(client_id, secret)
            )
            assert info.json()["aud"] == resource
            assert info.json()["scope"] == scope


async def test_token_cannot_switch_the_resource(flow: Flow) -> None:
    client_id, secret = await two_api_client(flow)
    sent = await code_for(flow, client_id, scope="mcp:tools", resource=OTHER)
    switched = await flow.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": sent["code"],
            "redirect_uri": WEB_REDIRECT,
            "resource": API,
        },
        auth=(client_id, secret),
    )
    assert switched.status_code == 400
    assert switched.json()["error"] == "invalid_target"


async def test_a_client_of_several_apis_must_name_one(flow: Flow) -> None:
    client_id, _ = await two_api_client(flow)
    response = await flow.agent().authorize(
        response_type="code",
        client_id=client_id,
        redirect_uri=WEB_REDIRECT,
        scope="mcp:tools",
        state="n",
    )
    sent = redirect_params(response)
    assert sent["error"] == "invalid_target"
    assert sent["iss"] == ISSUER
    two = await flow.agent().http.get(
        "/authorize",
        params=[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "mcp:tools"),
            ("state", "t"),
            ("resource", OTHER),
            ("resource", API),
        ],
    )
    assert redirect_params(two)["error"] == "invalid_target"  # one audience per token
