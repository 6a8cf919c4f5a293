"""RFC 7591 §2 client metadata: the shape checks, the defaults, grant and response types
agreeing (§2.1), the members an RFC 7592 update must not carry, and the information response."""

from __future__ import annotations

import json

import pytest

from authgate.oauth.errors import InvalidClientMetadata
from authgate.server.models import ApiAccess, Client
from authgate.server.registration.metadata import (
    client_information,
    parse_json_object,
    read_metadata,
)


def test_defaults_follow_rfc_7591() -> None:
    metadata = read_metadata({"redirect_uris": ["https://a.test/cb"]})
    assert metadata.grant_types == ("authorization_code",)
    assert metadata.token_endpoint_auth_method == "client_secret_basic"
    assert metadata.application_type == "web"
    assert metadata.scopes == ()
    assert metadata.client_name == "unnamed client"
    machine = read_metadata({"grant_types": ["client_credentials"]})
    assert machine.redirect_uris == ()


def test_null_members_mean_absent_and_duplicates_in_arrays_collapse() -> None:
    metadata = read_metadata(
        {"redirect_uris": ["https://a.test/cb", "https://a.test/cb"], "scope": None, "jwks": None}
    )
    assert metadata.redirect_uris == ("https://a.test/cb",)
    assert metadata.scopes == ()
    assert metadata.jwks is None


@pytest.mark.parametrize(
    ("grant_types", "response_types"),
    [
        (["authorization_code"], []),
        (["client_credentials"], ["code"]),
        (["authorization_code"], ["code", "token"]),
        (["authorization_code"], ["id_token"]),
    ],
)
def test_grant_and_response_types_must_agree(
    grant_types: list[str], response_types: list[str]
) -> None:
    with pytest.raises(InvalidClientMetadata):
        read_metadata({"grant_types": grant_types, "response_types": response_types})


def test_an_update_carries_its_client_id_and_none_of_the_servers_fields() -> None:
    with pytest.raises(InvalidClientMetadata, match="client_id"):
        read_metadata({}, update=True)
    for name in ("registration_access_token", "client_id_issued_at"):
        with pytest.raises(InvalidClientMetadata, match=name):
            read_metadata({"client_id": "c", name: 1}, update=True)
    update = read_metadata({"client_id": "c", "client_secret": "s"}, update=True)
    assert (update.client_id, update.client_secret) == ("c", "s")
    # A registration never reads them.
    assert read_metadata({"client_id": "c", "client_secret": "s"}).client_id is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"1",
        b'"x"',
        b"\xc3\x28",
        b'{"a": 1, "a": 2}',
        b"[" * 50_000,
        b'{"a": "\\u0000"}',
    ],
)
def test_only_one_json_object_of_storable_text_is_read(body: bytes) -> None:
    with pytest.raises(InvalidClientMetadata):
        parse_json_object(body)


def test_nested_duplicates_are_refused_too() -> None:
    with pytest.raises(InvalidClientMetadata, match="'kty' appears twice"):
        parse_json_object(b'{"jwks": {"keys": [{"kty": "EC", "kty": "RSA"}]}}')


def test_the_information_response_shows_secrets_only_when_given() -> None:
    client = Client(
        client_id="c1",
        name="app",
        auth_method="client_secret_basic",
        grant_types=("authorization_code",),
        access=(ApiAccess(api="https://api.test", scopes=("read",)),),
        redirect_uris=("https://a.test/cb",),
        created_at=5,
        origin="registration",
    )
    info = client_information(client, registration_client_uri="https://as/register/c1")
    assert "client_secret" not in info
    assert "registration_access_token" not in info
    assert info["client_secret_expires_at"] == 0
    assert info["client_id_issued_at"] == 5
    assert info["scope"].split(" ")[0] == "read"
    assert "openid" in info["scope"].split(" ")
    assert info["response_types"] == ["code"]
    issued = client_information(
        client,
        registration_client_uri="https://as/register/c1",
        client_secret="s3cret",
        registration_access_token="t0ken",
    )
    assert (issued["client_secret"], issued["registration_access_token"]) == ("s3cret", "t0ken")
    json.dumps(issued)  # JSON-ready
