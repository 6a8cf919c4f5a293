"""The device authorization grant at the token endpoint (RFC 8628 §3.4-§3.5).

The device polls with its `device_code`: `authorization_pending` until the user decides,
`slow_down` when it polls faster than its interval (which then grows by 5 seconds), and then
`access_denied`, `expired_token`, or the tokens, handed out once (`flows.device_codes`). Token
endpoint errors are all 400 (RFC 6749 §5.2), `access_denied` included, although the same code
answers 403 elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from authgate.oauth.errors import AccessDenied, InvalidGrant
from authgate.server.flows.device_codes import poll_device_code
from authgate.server.grants.base import ClientGoneCheck, TokenResponse, presented_credential
from authgate.server.grants.user_tokens import UserGrant, UserTokens
from authgate.server.http.forms import Form
from authgate.server.models import Client
from authgate.server.storage.protocols import DeviceAuthorizationStore

__all__ = ["DEVICE_CODE_GRANT", "DeviceCodeGrant"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class _DeniedAtTokenEndpoint(AccessDenied):
    status_code = 400  # RFC 8628 §3.5 uses the RFC 6749 §5.2 error response


class DeviceCodeGrant:
    """`grant_type=urn:ietf:params:oauth:grant-type:device_code`."""

    grant_type: ClassVar[str] = DEVICE_CODE_GRANT
    allows_public_clients: ClassVar[bool] = True  # RFC 8628 §3.4: devices are often public

    def __init__(
        self,
        tokens: UserTokens,
        *,
        devices: DeviceAuthorizationStore,
        hash_token: Callable[[str], str],
        now: Callable[[], int],
    ) -> None:
        self._tokens = tokens
        self._devices = devices
        self._hash_token = hash_token
        self._now = now

    async def handle(
        self, form: Form, client: Client, client_gone: ClientGoneCheck
    ) -> TokenResponse:
        device_code = presented_credential(form, "device_code", unknown="unknown device code")
        try:
            record = await poll_device_code(
                self._devices,
                self._hash_token(device_code),
                client_id=client.client_id,
                now=self._now(),
            )
        except AccessDenied as exc:
            raise _DeniedAtTokenEndpoint(exc.description) from None
        if record.user_id is None or record.auth_time is None:  # approved records have both
            raise InvalidGrant("the device authorization is incomplete")
        return await self._tokens.issue(
            UserGrant(
                grant_id=record.grant_id,
                client=client,
                user_id=record.user_id,
                scopes=record.scopes,
                audience=record.audiences[0],
                auth_time=record.auth_time,
                amr=record.amr,
            )
        )
