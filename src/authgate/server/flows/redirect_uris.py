"""Redirect URIs: what may be registered and how a request's `redirect_uri` is matched.

RFC 6749 §3.1.2 (absolute, no fragment), RFC 9700 §2.1 and §4.1.3 (exact string matching, no
patterns), RFC 8252 §7.1 (private-use schemes of native apps), §7.3 (loopback redirects on any
port) and §8.3 (`localhost` is not recommended), RFC 6749 §10.15 and RFC 9700 §4.11 (no open
redirect).

Matching is a plain string comparison with one exception: for `http://127.0.0.1` and
`http://[::1]` the port is ignored, because a native app listens on whatever port the operating
system gives it. Everything else (scheme, host, path, query, case, percent-encoding) must be
identical, so path, query, case and userinfo variants never match. `http://localhost` cannot be
registered: the name may resolve elsewhere or be captured by another listener (RFC 8252 §8.3), so
native apps use the IP literals; `https://localhost/...` is matched exactly like any https URI.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

from authgate.oauth.errors import InvalidRedirectUri

__all__ = [
    "MAX_REDIRECT_URI_LENGTH",
    "add_query",
    "check_redirect_uri",
    "check_redirect_uri_for",
    "is_loopback_redirect",
    "match_redirect_uri",
]

MAX_REDIRECT_URI_LENGTH = 2000
_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # no spaces, controls or non-ASCII (use punycode)
# RFC 3986 §3.1 scheme; a private-use scheme is a reversed domain name, so it contains a dot.
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_IPV6_LITERAL = re.compile(r"\[[0-9a-f:.]+\]")
_LOOPBACK = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[1-9][0-9]{0,4}))?(?P<rest>[/?][^#]*)?"
)


def check_redirect_uri(uri: str) -> None:
    """Refuse a redirect URI that must not be registered; raise `InvalidRedirectUri` with why.

    Allowed: `https://host/...`; `http://127.0.0.1[:port]/...` and `http://[::1][:port]/...` for
    native apps (RFC 8252 §7.3); private-use schemes such as `com.example.app:/callback`
    (RFC 8252 §7.1). Refused: fragments, userinfo, `*` (no wildcards), relative URIs, other
    plain-http hosts including `localhost`, spaces and non-ASCII, upper-case scheme or host.
    """
    if len(uri) > MAX_REDIRECT_URI_LENGTH or _PRINTABLE.fullmatch(uri) is None:
        raise InvalidRedirectUri("redirect URI must be printable ASCII without spaces")
    if "#" in uri:
        raise InvalidRedirectUri("redirect URI must not contain a fragment")  # RFC 6749 §3.1.2
    if "*" in uri:
        raise InvalidRedirectUri("redirect URI must not contain '*' (no wildcards)")
    scheme, sep, rest = uri.partition(":")
    if not sep or _SCHEME.fullmatch(scheme) is None:
        raise InvalidRedirectUri("redirect URI must be absolute with a lower-case scheme")
    if scheme == "https":
        _check_https(uri)
    elif scheme == "http":
        match = _LOOPBACK.fullmatch(uri)
        if match is None or not _valid_port(match.group("port")):
            raise InvalidRedirectUri(
                "plain http is allowed only for loopback IP literals "
                "(http://127.0.0.1 or http://[::1], any port; not localhost)"
            )
    elif "." not in scheme:
        raise InvalidRedirectUri(
            "use https, a loopback http URI, or a private-use scheme named after a domain you "
            "control, such as com.example.app:/callback (RFC 8252 §7.1)"
        )
    elif rest.startswith("//") and "@" in rest[2:].split("/", 1)[0]:
        raise InvalidRedirectUri("redirect URI must not contain userinfo")


def check_redirect_uri_for(uri: str, application_type: str | None) -> None:
    """`check_redirect_uri`, and the rule of the client's `application_type` (OpenID Connect
    Registration §2, RFC 8252 §8.4): a `web` client redirects to https URIs only; loopback and
    private-use schemes are a `native` app's (which may also use a claimed https URI, RFC 8252
    §7.2). None (a client registered without a type) adds no rule."""
    check_redirect_uri(uri)
    if application_type == "web" and not uri.startswith("https://"):
        raise InvalidRedirectUri(
            "a web client's redirect URIs must use https; loopback and private-use schemes are "
            "for native apps (application_type native, RFC 8252)"
        )


def _check_https(uri: str) -> None:
    # Split by hand: urlsplit raises on some malformed IPv6 hosts, and its rules are not ours.
    netloc = re.split(r"[/?]", uri[len("https://") :], maxsplit=1)[0]
    if not uri.startswith("https://") or not netloc:
        raise InvalidRedirectUri("https redirect URI must have a host")
    if "@" in netloc:
        raise InvalidRedirectUri("redirect URI must not contain userinfo")  # RFC 9700 §4.1
    if netloc.startswith("["):
        end = netloc.find("]") + 1
        host, after = netloc[:end], netloc[end:]
        if end == 0 or _IPV6_LITERAL.fullmatch(host) is None or not _is_ipv6(host[1:-1]):
            raise InvalidRedirectUri("redirect URI has an invalid IPv6 host")
    else:
        host, colon, port = netloc.partition(":")
        after = colon + port
        if _HOST.fullmatch(host) is None:
            raise InvalidRedirectUri("redirect URI host must be a lower-case DNS name or IP")
    if after and (not after.startswith(":") or not _valid_port(after[1:])):
        raise InvalidRedirectUri("redirect URI has an invalid port")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _valid_port(port: str | None) -> bool:
    if port is None:
        return True
    return port.isascii() and port.isdigit() and port[0] != "0" and 0 < int(port) <= 65535


def match_redirect_uri(requested: str, registered: Iterable[str]) -> str | None:
    """The redirect URI to use when `requested` matches a registered one, else None.

    Exact string comparison (RFC 9700 §4.1.3); for loopback IP literals any port is accepted
    (RFC 8252 §7.3) while host, path and query must still be identical.
    """
    registered = tuple(registered)
    if requested in registered:
        return requested
    loopback = _LOOPBACK.fullmatch(requested)
    if loopback is None or not _valid_port(loopback.group("port")):
        return None
    wanted = (loopback.group("host"), loopback.group("rest") or "")
    for candidate in registered:
        other = _LOOPBACK.fullmatch(candidate)
        if other is not None and (other.group("host"), other.group("rest") or "") == wanted:
            return requested
    return None


def is_loopback_redirect(uri: str) -> bool:
    """Whether `uri` is a loopback redirect (`http://127.0.0.1` or `http://[::1]`, RFC 8252 §7.3):
    it reaches whatever listens on the user's own device."""
    return _LOOPBACK.fullmatch(uri) is not None


def add_query(uri: str, params: Mapping[str, str]) -> str:
    """`uri` with `params` appended to its query, form-urlencoded (RFC 6749 Appendix B), keeping the
    query it already has (RFC 6749 §3.1.2). `uri` is a validated redirect URI: no fragment."""
    if not params:
        return uri
    separator = "&" if "?" in uri else "?"
    if uri.endswith(("?", "&")):
        separator = ""
    return uri + separator + urlencode(params)
