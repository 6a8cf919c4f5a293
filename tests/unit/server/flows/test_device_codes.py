"""Device authorization grant (RFC 8628): codes, the user's decision, polling."""

from __future__ import annotations

import asyncio
import math
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from authgate.oauth import errors
from authgate.server.flows import device_codes as dc
from authgate.server.flows.device_codes import USER_CODE_ALPHABET, DevicePolicy, TokensDue
from authgate.server.models import DeviceAuthorization
from authgate.server.storage.memory import MemoryDeviceStore
from tests.support.flows import NOW, keyed_hash

POLICY = DevicePolicy(lifetime=600, interval=5)
VERIFY = "https://auth.example.com/device"


def start() -> tuple[str, str, DeviceAuthorization]:
    return dc.start(
        hash_token=keyed_hash,
        client_id="tv-app",
        scopes=["openid", "offline_access"],
        audiences=["https://api.example.com"],
        now=NOW,
        policy=POLICY,
    )


def test_alphabet_has_no_vowels_or_look_alikes() -> None:
    assert len(set(USER_CODE_ALPHABET)) == 20
    assert not set(USER_CODE_ALPHABET) & set("AEIOUY01")
    # 20^8 codes: about 34.5 bits (RFC 8628 §6.1 asks for enough entropy with rate limiting).
    assert math.log2(len(USER_CODE_ALPHABET) ** 8) > 34


def test_start() -> None:
    device_code, user_code, record = start()
    assert len(device_code) == 43
    assert re.fullmatch(f"[{USER_CODE_ALPHABET}]{{8}}", user_code)
    assert record.device_code_hash == keyed_hash(device_code)
    assert record.user_code_hash == keyed_hash(user_code)
    assert device_code not in repr(record)
    assert user_code not in repr(record)
    assert (record.status, record.interval, record.expires_at) == ("pending", 5, NOW + 600)


def test_user_codes_are_spread_over_the_alphabet() -> None:
    letters = "".join(dc.new_user_code() for _ in range(500))
    assert set(letters) == set(USER_CODE_ALPHABET)


def test_authorization_response() -> None:
    device_code, user_code, record = start()
    body = dc.authorization_response(device_code, user_code, record, VERIFY, NOW + 1)
    shown = f"{user_code[:4]}-{user_code[4:]}"
    assert body == {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": VERIFY,
        "verification_uri_complete": body["verification_uri_complete"],
        "expires_in": 599,
        "interval": 5,
    }
    complete = urlsplit(body["verification_uri_complete"])
    assert complete._replace(query="").geturl() == VERIFY
    assert parse_qs(complete.query) == {"user_code": [shown]}


@pytest.mark.parametrize(
    "typed", ["BCDF-GHJK", "bcdfghjk", "bcdf ghjk", " BcDf-gHjK ", "BC-DF-GH-JK", "bcdf\tghjk"]
)
def test_normalization_ignores_case_dashes_and_spaces(typed: str) -> None:
    assert dc.normalize_user_code(typed) == "BCDFGHJK"


@pytest.mark.parametrize(
    "typed",
    [
        "BCDF-GHJ",
        "BCDF-GHJKL",
        "ACDF-GHJK",
        "BCDF-GHJ0",
        "",
        "-" * 40,
        "BCDF\u2013GHJK",
        "ßCDFGHJK",
    ],
)
def test_normalization_refuses_what_cannot_be_a_code(typed: str) -> None:
    assert dc.normalize_user_code(typed) is None


def test_format_user_code() -> None:
    assert dc.format_user_code("BCDFGHJK") == "BCDF-GHJK"


# -- polling (RFC 8628 §3.5) -------------------------------------------------------------------


def test_pending_then_slow_down_grows_the_interval_for_good() -> None:
    _, _, record = start()
    outcome, record = dc.poll(record, client_id="tv-app", now=NOW + 5)
    assert isinstance(outcome, errors.AuthorizationPending)
    outcome, record = dc.poll(record, client_id="tv-app", now=NOW + 7)
    assert isinstance(outcome, errors.SlowDown)
    assert record.interval == 10
    outcome, record = dc.poll(record, client_id="tv-app", now=NOW + 16)  # 9 s < 10 s
    assert isinstance(outcome, errors.SlowDown)
    assert record.interval == 15
    outcome, record = dc.poll(record, client_id="tv-app", now=NOW + 31)
    assert isinstance(outcome, errors.AuthorizationPending)
    assert record.interval == 15


def test_first_poll_is_never_too_fast() -> None:
    _, _, record = start()
    outcome, _ = dc.poll(record, client_id="tv-app", now=NOW)
    assert isinstance(outcome, errors.AuthorizationPending)


def test_approved_issues_once() -> None:
    _, _, record = start()
    record = dc.approve(record, user_id="alice", auth_time=NOW + 20, amr=["pwd"], now=NOW + 30)
    outcome, used = dc.poll(record, client_id="tv-app", now=NOW + 31)
    assert isinstance(outcome, TokensDue)
    assert outcome.record is used
    assert (used.status, used.user_id, used.auth_time, used.amr) == (
        "used",
        "alice",
        NOW + 20,
        ("pwd",),
    )
    outcome, _ = dc.poll(used, client_id="tv-app", now=NOW + 40)
    assert isinstance(outcome, errors.InvalidGrant)


def test_denied() -> None:
    _, _, record = start()
    record = dc.deny(record, now=NOW + 30)
    outcome, _ = dc.poll(record, client_id="tv-app", now=NOW + 40)
    assert isinstance(outcome, errors.AccessDenied)


def test_expired() -> None:
    _, _, record = start()
    outcome, same = dc.poll(record, client_id="tv-app", now=record.expires_at)
    assert isinstance(outcome, errors.ExpiredDeviceCode)
    assert same is record
    approved = dc.approve(record, user_id="a", auth_time=NOW, amr=[], now=NOW + 1)
    outcome, _ = dc.poll(approved, client_id="tv-app", now=record.expires_at)
    assert isinstance(outcome, errors.ExpiredDeviceCode)


def test_other_client_cannot_poll() -> None:
    _, _, record = start()
    record = dc.approve(record, user_id="alice", auth_time=NOW, amr=[], now=NOW + 1)
    outcome, same = dc.poll(record, client_id="other", now=NOW + 2)
    assert isinstance(outcome, errors.InvalidGrant)
    assert same is record


def test_decisions_only_once_and_before_expiry() -> None:
    _, _, record = start()
    approved = dc.approve(record, user_id="alice", auth_time=NOW, amr=[], now=NOW + 1)
    with pytest.raises(errors.InvalidGrant):
        dc.deny(approved, now=NOW + 2)
    with pytest.raises(errors.InvalidGrant):
        dc.approve(approved, user_id="mallory", auth_time=NOW, amr=[], now=NOW + 2)
    with pytest.raises(errors.ExpiredDeviceCode):
        dc.approve(record, user_id="alice", auth_time=NOW, amr=[], now=record.expires_at)


def test_every_change_bumps_the_version() -> None:
    _, _, record = start()
    _, polled = dc.poll(record, client_id="tv-app", now=NOW)
    approved = dc.approve(polled, user_id="a", auth_time=NOW, amr=[], now=NOW)
    _, used = dc.poll(approved, client_id="tv-app", now=NOW + 6)
    assert [r.version for r in (record, polled, approved, used)] == [0, 1, 2, 3]


@pytest.mark.parametrize(("lifetime", "interval"), [(59, 5), (3601, 5), (600, 0), (600, 61)])
def test_policy_validation(lifetime: int, interval: int) -> None:
    with pytest.raises(ValueError, match="device flow"):
        DevicePolicy(lifetime=lifetime, interval=interval)


# -- with a store ---------------------------------------------------------------------------------


async def test_full_flow_through_the_store() -> None:
    store = MemoryDeviceStore()
    device_code, user_code, record = start()
    await store.create_device_authorization(record)
    with pytest.raises(errors.AuthorizationPending):
        await dc.poll_device_code(store, keyed_hash(device_code), client_id="tv-app", now=NOW + 5)
    typed = dc.normalize_user_code(user_code.lower())
    assert typed is not None
    decided = await dc.decide_device_code(
        store,
        keyed_hash(typed),
        approved=True,
        user_id="alice",
        auth_time=NOW,
        amr=["pwd"],
        now=NOW + 8,
    )
    assert decided.status == "approved"
    issued = await dc.poll_device_code(
        store, keyed_hash(device_code), client_id="tv-app", now=NOW + 11
    )
    assert issued.user_id == "alice"
    with pytest.raises(errors.InvalidGrant):
        await dc.poll_device_code(store, keyed_hash(device_code), client_id="tv-app", now=NOW + 20)


async def test_unknown_codes() -> None:
    store = MemoryDeviceStore()
    with pytest.raises(errors.InvalidGrant):
        await dc.poll_device_code(store, "nope", client_id="tv-app", now=NOW)
    with pytest.raises(errors.InvalidGrant):
        await dc.decide_device_code(
            store, "nope", approved=True, user_id="a", auth_time=NOW, amr=[], now=NOW
        )


async def test_concurrent_polls_of_an_approved_code_issue_once() -> None:
    store = MemoryDeviceStore()
    device_code, _, record = start()
    await store.create_device_authorization(
        dc.approve(record, user_id="alice", auth_time=NOW, amr=[], now=NOW + 1)
    )

    async def one_poll() -> str:
        try:
            await dc.poll_device_code(
                store, keyed_hash(device_code), client_id="tv-app", now=NOW + 9
            )
        except errors.OAuthError as exc:
            return exc.error
        return "issued"

    outcomes = await asyncio.gather(*(one_poll() for _ in range(20)))
    assert outcomes.count("issued") == 1
    assert set(outcomes) <= {"issued", "slow_down", "invalid_grant"}


async def test_decision_retries_when_a_poll_changed_the_record() -> None:
    store = MemoryDeviceStore()
    device_code, user_code, record = start()
    await store.create_device_authorization(record)
    real_find = store.find_device_authorization
    calls = 0

    async def find_then_poll(user_code_hash: str) -> DeviceAuthorization | None:
        nonlocal calls
        calls += 1
        found = await real_find(user_code_hash)
        if calls == 1:  # a poll sneaks in between the read and the write
            with pytest.raises(errors.AuthorizationPending):
                await dc.poll_device_code(
                    store, keyed_hash(device_code), client_id="tv-app", now=NOW
                )
        return found

    store.find_device_authorization = find_then_poll  # type: ignore[method-assign]
    decided = await dc.decide_device_code(
        store, keyed_hash(user_code), approved=False, user_id="a", auth_time=NOW, amr=[], now=NOW
    )
    assert calls == 2
    assert decided.status == "denied"
    assert decided.last_polled_at == NOW  # the poll's change was not lost
    assert store.records[record.device_code_hash] == decided
