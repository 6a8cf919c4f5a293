"""The storage roles of the user-facing flows (`storage.protocols`) in this process's memory.

They keep the written contracts within one process and one event loop, and are what the contract
checks run against beside the SQL stores; tests of the flows use them instead of a database.
Nothing here is shared between processes, so a server of several processes cannot use them.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from authgate.server.models import (
    AuditEvent,
    AuthorizationCode,
    CodeRedemption,
    ConsentGrant,
    DeviceAuthorization,
    InitialAccessToken,
    PushedRequest,
    RefreshFamily,
    Session,
    ThrottleState,
)
from authgate.server.storage.protocols import AlreadyExistsError

__all__ = [
    "MemoryAuditStore",
    "MemoryCodeStore",
    "MemoryConsentStore",
    "MemoryDeviceStore",
    "MemoryGrantRevoker",
    "MemoryInitialAccessTokenStore",
    "MemoryLockedFamily",
    "MemoryPushedRequestStore",
    "MemoryRefreshStore",
    "MemorySessionStore",
    "MemoryThrottleStore",
]


class MemoryCodeStore:
    """An `AuthorizationCodeStore`."""

    def __init__(self) -> None:
        self.codes: dict[str, tuple[AuthorizationCode, int | None]] = {}

    async def save_code(self, code: AuthorizationCode) -> None:
        if code.code_hash in self.codes:
            raise AlreadyExistsError(code.code_hash)
        self.codes[code.code_hash] = (code, None)

    async def consume_code(self, code_hash: str, now: int) -> CodeRedemption | None:
        entry = self.codes.get(code_hash)
        if entry is None:
            return None
        code, used_at = entry
        await asyncio.sleep(0)  # let concurrent callers interleave; the update below is atomic
        code, used_at = self.codes[code_hash]
        if used_at is None:
            self.codes[code_hash] = (code, now)
            return CodeRedemption(code, first_use=True)
        return CodeRedemption(code, first_use=False)


class MemoryPushedRequestStore:
    """A `PushedRequestStore`."""

    def __init__(self) -> None:
        self.requests: dict[str, tuple[PushedRequest, int | None]] = {}

    async def save_pushed_request(self, request: PushedRequest) -> None:
        if request.uri_hash in self.requests:
            raise AlreadyExistsError(request.uri_hash)
        self.requests[request.uri_hash] = (request, None)

    async def use_pushed_request(
        self, uri_hash: str, client_id: str, now: int
    ) -> PushedRequest | None:
        await asyncio.sleep(0)  # let concurrent callers interleave; the check-and-set is atomic
        entry = self.requests.get(uri_hash)
        if entry is None:
            return None
        request, used_at = entry
        if used_at is not None or request.client_id != client_id or request.expires_at <= now:
            return None
        self.requests[uri_hash] = (request, now)
        return request


class MemoryGrantRevoker:
    """A `GrantRevoker` for a process that holds no access tokens: it keeps the revoked grant
    ids, in the order they were revoked."""

    def __init__(self) -> None:
        self.revoked: list[str] = []

    async def revoke_grant(self, grant_id: str, now: int) -> None:
        self.revoked.append(grant_id)


@dataclass
class MemoryLockedFamily:
    """A `LockedFamily` of `MemoryRefreshStore`."""

    store: MemoryRefreshStore
    family: RefreshFamily
    generation: int

    async def save(self, family: RefreshFamily) -> None:
        self.store.pending = family


class MemoryRefreshStore:
    """A `RefreshTokenStore`: one `asyncio.Lock` per family."""

    def __init__(self) -> None:
        self.families: dict[str, RefreshFamily] = {}
        self.tokens: dict[str, tuple[str, int]] = {}  # hash -> (family_id, generation)
        self.locks: dict[str, asyncio.Lock] = {}
        self.pending: RefreshFamily | None = None

    async def create_family(self, family: RefreshFamily) -> None:
        if family.family_id in self.families or family.current_hash in self.tokens:
            raise AlreadyExistsError(family.family_id)
        self.families[family.family_id] = family
        self.tokens[family.current_hash] = (family.family_id, family.generation)

    @asynccontextmanager
    async def grant_transaction(self, grant_id: str) -> AsyncIterator[None]:
        yield  # nothing to group: every change is immediate

    @asynccontextmanager
    async def lock_family(self, token_hash: str) -> AsyncIterator[MemoryLockedFamily | None]:
        entry = self.tokens.get(token_hash)
        if entry is None:
            yield None
            return
        family_id, generation = entry
        async with self.locks.setdefault(family_id, asyncio.Lock()):
            self.pending = None
            yield MemoryLockedFamily(self, self.families[family_id], generation)
            # Committed only when the block exits without an exception.
            new = self._take_pending()
            if new is not None:
                if new.generation > self.families[family_id].generation:
                    self.tokens[new.current_hash] = (family_id, new.generation)
                self.families[family_id] = new

    async def find_family(self, token_hash: str) -> RefreshFamily | None:
        entry = self.tokens.get(token_hash)
        return None if entry is None else self.families[entry[0]]

    def _take_pending(self) -> RefreshFamily | None:
        new, self.pending = self.pending, None
        return new


class MemoryDeviceStore:
    """A `DeviceAuthorizationStore`."""

    def __init__(self) -> None:
        self.records: dict[str, DeviceAuthorization] = {}

    async def create_device_authorization(self, record: DeviceAuthorization) -> None:
        taken = {r.user_code_hash for r in self.records.values()}
        if record.device_code_hash in self.records or record.user_code_hash in taken:
            raise AlreadyExistsError(record.user_code_hash)
        self.records[record.device_code_hash] = record

    async def get_device_authorization(self, device_code_hash: str) -> DeviceAuthorization | None:
        return self.records.get(device_code_hash)

    async def find_device_authorization(self, user_code_hash: str) -> DeviceAuthorization | None:
        for record in self.records.values():
            if record.user_code_hash == user_code_hash:
                return record
        return None

    async def count_pending_device_authorizations(self, now: int) -> int:
        return sum(r.status == "pending" and now < r.expires_at for r in self.records.values())

    async def replace_device_authorization(
        self, old: DeviceAuthorization, new: DeviceAuthorization
    ) -> bool:
        await asyncio.sleep(0)
        current = self.records.get(old.device_code_hash)
        if current is None or current.version != old.version:
            return False
        self.records[old.device_code_hash] = new
        return True


class MemoryConsentStore:
    """A `ConsentStore`."""

    def __init__(self) -> None:
        self.grants: dict[tuple[str, str], ConsentGrant] = {}

    async def get_consent(self, user_id: str, client_id: str) -> ConsentGrant | None:
        return self.grants.get((user_id, client_id))

    async def save_consent(self, grant: ConsentGrant) -> None:
        self.grants[(grant.user_id, grant.client_id)] = grant

    async def list_consents(self, user_id: str | None = None) -> list[ConsentGrant]:
        return [self.grants[key] for key in sorted(self.grants) if user_id in (None, key[0])]

    async def revoke_consent(self, user_id: str, client_id: str) -> bool:
        return self.grants.pop((user_id, client_id), None) is not None


class MemorySessionStore:
    """A `SessionStore`."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}

    async def get_session(self, session_hash: str) -> Session | None:
        return self.sessions.get(session_hash)

    async def save_session(self, session: Session) -> None:
        self.sessions[session.session_hash] = session

    async def delete_session(self, session_hash: str) -> None:
        self.sessions.pop(session_hash, None)

    async def delete_user_sessions(self, user_id: str) -> int:
        doomed = [h for h, s in self.sessions.items() if s.user_id == user_id]
        for session_hash in doomed:
            del self.sessions[session_hash]
        return len(doomed)


class MemoryThrottleStore:
    """A `ThrottleStore`. Bounded: beyond `max_entries` keys, the least recently updated are
    forgotten."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[str, ThrottleState] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries

    async def update_throttle(
        self,
        key: str,
        change: Callable[[ThrottleState | None], tuple[int | None, ThrottleState | None]],
    ) -> int | None:
        with self._lock:
            result, new = change(self._entries.get(key))
            if new is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = new
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
            return result

    async def clear_throttle(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class MemoryAuditStore:
    """An `AuditStore`. Bounded: beyond `max_entries` events, the oldest are forgotten."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.events: list[AuditEvent] = []
        self._next_id = 1
        self._max_entries = max_entries

    async def append_audit_event(self, event: AuditEvent) -> None:
        self.events.append(replace(event, event_id=self._next_id))
        self._next_id += 1
        del self.events[: -self._max_entries]

    async def list_audit_events(self, since: int, limit: int) -> list[AuditEvent]:
        matching = [e for e in self.events if e.at >= since]
        return matching[-limit:] if limit > 0 else []


class MemoryInitialAccessTokenStore:
    """An `InitialAccessTokenStore`."""

    def __init__(self) -> None:
        self.tokens: dict[str, InitialAccessToken] = {}  # by token_id

    async def create_initial_access_token(self, token: InitialAccessToken) -> None:
        taken = {t.token_hash for t in self.tokens.values()}
        if token.token_id in self.tokens or token.token_hash in taken:
            raise AlreadyExistsError(token.token_id)
        self.tokens[token.token_id] = token

    async def list_initial_access_tokens(self) -> list[InitialAccessToken]:
        return sorted(self.tokens.values(), key=lambda t: (t.created_at, t.token_id))

    async def find_initial_access_token(self, token_hash: str) -> InitialAccessToken | None:
        for token in self.tokens.values():
            if token.token_hash == token_hash:
                return token
        return None

    async def revoke_initial_access_token(self, token_id: str, now: int) -> bool:
        token = self.tokens.get(token_id)
        if token is None or token.revoked_at is not None:
            return False
        self.tokens[token_id] = replace(token, revoked_at=now)
        return True

    async def use_initial_access_token(
        self, token_hash: str, now: int
    ) -> InitialAccessToken | None:
        await asyncio.sleep(0)  # let concurrent callers interleave; the update below is atomic
        for token in self.tokens.values():
            if token.token_hash == token_hash:
                if not token.usable(now):
                    return None
                self.tokens[token.token_id] = replace(token, uses=token.uses + 1)
                return token
        return None
