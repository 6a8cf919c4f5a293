"""`flows.pushed_requests`: what a push keeps, and the front channel's rules at /authorize (RFC
9126 §2.1, §4), against the in-memory store."""

from __future__ import annotations

import pytest

from authgate.oauth.errors import InvalidRequest, InvalidRequestUri, RequestNotSupported
from authgate.server.flows.authorization_request import PageError
from authgate.server.flows.pushed_requests import (
    REQUEST_URI_PREFIX,
    new_pushed_request,
    pushed_parameters,
    use_request_uri,
)
from authgate.server.storage.memory import MemoryPushedRequestStore
from tests.support.flows import NOW, keyed_hash

PUSHED = [
    ("response_type", "code"),
    ("redirect_uri", "https://app.example.com/callback"),
    ("resource", "https://a.test"),
    ("resource", "https://b.test"),
    ("client_secret", "s3cret"),
    ("utm_source", "x"),
]


def test_pushed_parameters_keep_the_request_and_drop_credentials() -> None:
    kept = pushed_parameters(PUSHED, "web")
    assert kept[0] == ("client_id", "web")  # added: authenticated with Basic
    assert ("client_secret", "s3cret") not in kept
    assert ("utm_source", "x") not in kept
    assert [v for n, v in kept if n == "resource"] == ["https://a.test", "https://b.test"]
    assert (
        pushed_parameters([("client_id", "web"), *PUSHED], "web").count(("client_id", "web")) == 1
    )


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (("request_uri", REQUEST_URI_PREFIX + "x"), InvalidRequest),
        (("request", "eyJ.e30."), RequestNotSupported),
        (("client_id", "other"), InvalidRequest),
    ],
)
def test_pushed_parameters_refuse(extra: tuple[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        pushed_parameters([*PUSHED, extra], "web")


async def _stored(store: MemoryPushedRequestStore) -> str:
    uri, record = new_pushed_request(
        pushed_parameters(PUSHED, "web"),
        client_id="web",
        hash_token=keyed_hash,
        now=NOW,
        lifetime=60,
    )
    assert uri.startswith(REQUEST_URI_PREFIX)
    assert record.uri_hash == keyed_hash(uri.removeprefix(REQUEST_URI_PREFIX))
    assert record.expires_at == NOW + 60
    await store.save_pushed_request(record)
    return uri


async def _use(
    store: MemoryPushedRequestStore, *pairs: tuple[str, str], client: str = "web"
) -> list[tuple[str, str]]:
    return await use_request_uri(list(pairs), client, store, hash_token=keyed_hash, now=NOW)


async def test_a_request_uri_gives_the_pushed_parameters_once() -> None:
    store = MemoryPushedRequestStore()
    uri = await _stored(store)
    params = await _use(store, ("client_id", "web"), ("request_uri", uri), ("utm", "ignored"))
    assert params == pushed_parameters(PUSHED, "web")
    with pytest.raises(PageError) as caught:
        await _use(store, ("client_id", "web"), ("request_uri", uri))
    assert isinstance(caught.value.error, InvalidRequestUri)


async def test_front_channel_parameters_are_ignored_but_request_is_refused() -> None:
    store = MemoryPushedRequestStore()
    uri = await _stored(store)
    with pytest.raises(PageError) as caught:
        await _use(store, ("client_id", "web"), ("request_uri", uri), ("request", "eyJ.e30."))
    assert isinstance(caught.value.error, InvalidRequest)
    params = await _use(  # not spent by the refusal; the smuggled values are not in the answer
        store, ("client_id", "web"), ("request_uri", uri), ("scope", "admin"), ("state", "evil")
    )
    assert params == pushed_parameters(PUSHED, "web")


@pytest.mark.parametrize(
    "uri",
    ["", "urn:ietf:params:oauth:request_uri:", "https://x.test/r", REQUEST_URI_PREFIX + "a" * 65],
)
async def test_malformed_request_uris(uri: str) -> None:
    store = MemoryPushedRequestStore()
    with pytest.raises(PageError):
        await _use(store, ("client_id", "web"), ("request_uri", uri))


async def test_another_clients_request_uri() -> None:
    store = MemoryPushedRequestStore()
    uri = await _stored(store)
    with pytest.raises(PageError):
        await _use(store, ("client_id", "other"), ("request_uri", uri), client="other")
    assert await _use(store, ("client_id", "web"), ("request_uri", uri))
