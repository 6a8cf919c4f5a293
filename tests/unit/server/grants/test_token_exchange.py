"""The delegation rules of token exchange (`grants.token_exchange._act`; RFC 8693 §1.1, §4.1,
§4.4): who the new token's `act` names, how a chain nests, when impersonation is allowed, and
`may_act`."""

from __future__ import annotations

from typing import Any

import pytest

from authgate.oauth.errors import InvalidRequest
from authgate.server.grants.token_exchange import _act
from authgate.server.models import Client
from authgate.server.tokens.exchange_tokens import PresentedToken

SERVICE = Client(client_id="svc", name="svc", auth_method="client_secret_basic", grant_types=())
IMPERSONATOR = Client(
    client_id="imp",
    name="imp",
    auth_method="client_secret_basic",
    grant_types=(),
    exchange_impersonation=True,
)


def _token(sub: str, **kw: Any) -> PresentedToken:
    return PresentedToken(subject=sub, scopes=frozenset(), expires_at=0, **kw)


def test_delegation_names_the_actor() -> None:
    assert _act(_token("alice"), _token("svc"), SERVICE) == {"sub": "svc"}
    external = _token("bot", issuer="https://idp.test")
    assert _act(_token("alice"), external, SERVICE) == {"sub": "bot", "iss": "https://idp.test"}


def test_a_chain_nests_the_subjects_act() -> None:
    subject = _token("alice", act={"sub": "first", "act": {"sub": "zeroth"}})
    assert _act(subject, _token("second"), SERVICE) == {
        "sub": "second",
        "act": {"sub": "first", "act": {"sub": "zeroth"}},
    }


def test_impersonation_needs_permission_and_keeps_the_subjects_act() -> None:
    with pytest.raises(InvalidRequest, match="impersonate"):
        _act(_token("alice"), None, SERVICE)
    assert _act(_token("alice"), None, IMPERSONATOR) is None
    chained = _token("alice", act={"sub": "first"})
    assert _act(chained, None, IMPERSONATOR) == {"sub": "first"}


@pytest.mark.parametrize(
    ("may_act", "actor", "allowed"),
    [
        ({"sub": "svc"}, _token("svc"), True),
        ({"sub": "other"}, _token("svc"), False),
        ({"sub": "bot", "iss": "https://idp.test"}, _token("bot", issuer="https://idp.test"), True),
        ({"sub": "bot", "iss": "https://idp.test"}, _token("bot"), False),  # ours, not the idp's
        ({"sub": "bot"}, _token("bot", issuer="https://idp.test"), True),
        ({}, _token("svc"), False),  # names nobody
        ({"sub": "imp"}, None, True),  # impersonation: the client acts
    ],
)
def test_may_act(may_act: dict[str, str], actor: PresentedToken | None, allowed: bool) -> None:
    subject = _token("alice", may_act=may_act)
    client = IMPERSONATOR if actor is None else SERVICE
    if allowed:
        _act(subject, actor, client)
    else:
        with pytest.raises(InvalidRequest, match="may_act"):
            _act(subject, actor, client)
