"""Server-rendered pages and the security headers every page carries (RFC 9700 §4.16
clickjacking, §4.2.4 Referer leakage; CSP Level 3 `frame-ancestors`, `form-action`, hash sources;
RFC 7034 `X-Frame-Options`; RFC 9111 §5.2.2.5 `no-store`).

Templates are Jinja2 with autoescaping on every file and undefined variables as errors. They are
looked up in the operator's directories first, then in the built-in `authgate/server/templates`,
so a team restyles the pages by copying a template (or `base.html` alone) into its own directory
and pointing `template_dirs` there; the stylesheet is `{static_url}/authgate.css`, which the app
serves the same way. No page needs JavaScript: CSP forbids scripts everywhere except the one
auto-submit line of the `form_post` page, allowed by its hash, which merely spares a click.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from authgate.server.flows.sessions import CSRF_FIELD

__all__ = [
    "AUTO_SUBMIT_SCRIPT",
    "BUILTIN_TEMPLATES",
    "PageRenderer",
    "PageResponse",
    "csp_source",
    "security_headers",
]

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
AUTO_SUBMIT_SCRIPT = "document.forms[0].submit();"
_AUTO_SUBMIT_DIGEST = base64.b64encode(hashlib.sha256(AUTO_SUBMIT_SCRIPT.encode()).digest())
_AUTO_SUBMIT_HASH = f"'sha256-{_AUTO_SUBMIT_DIGEST.decode()}'"


@dataclass(frozen=True, slots=True)
class PageResponse:
    """An HTTP response as data: the app turns it into its framework's response object."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: str = ""


def csp_source(uri: str) -> str:
    """The CSP source expression that allows form submission to `uri`: its origin for http(s),
    its scheme for a private-use scheme (RFC 8252 §7.1). An IPv6 literal cannot be written as
    a CSP host, so `http://[::1]:port` is allowed as `http:` (only on the page that needs it)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc:
        if parts.netloc.startswith("["):
            return f"{scheme}:"
        return f"{scheme}://{parts.netloc}"
    return f"{scheme}:"


def security_headers(
    *, form_targets: Iterable[str] = (), allow_self_forms: bool = True, scripts: bool = False
) -> tuple[tuple[str, str], ...]:
    """The headers of every page and redirect of the user-facing flows.

    `form_targets`: URIs a form on the page, or a redirect following its submission, may lead to
    (Chrome applies `form-action` to the redirects after a POST, so the login and consent pages
    must allow the client's redirect URI). `scripts`: allow the `form_post` auto-submit line.
    """
    sources = ["'self'"] if allow_self_forms else []
    sources += dict.fromkeys(csp_source(target) for target in form_targets)
    form_action = " ".join(sources) or "'none'"
    csp = [
        "default-src 'none'",
        f"script-src {_AUTO_SUBMIT_HASH}" if scripts else "script-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        f"form-action {form_action}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
    return (
        ("Content-Security-Policy", "; ".join(csp)),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
    )


class PageRenderer:
    """Renders the flow pages with the operator's templates first, the built-in ones second."""

    def __init__(
        self,
        *,
        static_url: str,
        template_dirs: Sequence[str | Path] = (),
        site_name: str = "authgate",
        lang: str = "en",
    ) -> None:
        search_path = [*(Path(d) for d in template_dirs), BUILTIN_TEMPLATES]
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search_path),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.globals.update(
            static_url=static_url.rstrip("/"),
            site_name=site_name,
            lang=lang,
            csrf_field=CSRF_FIELD,
        )

    def render(
        self,
        template: str,
        context: Mapping[str, Any],
        *,
        status_code: int = 200,
        form_targets: Iterable[str] = (),
    ) -> PageResponse:
        """Render `template` with `context`; `form_targets` as in `security_headers`."""
        body = self.environment.get_template(template).render(context)
        headers = (
            ("Content-Type", "text/html; charset=utf-8"),
            *security_headers(form_targets=form_targets),
        )
        return PageResponse(status_code, headers, body)

    def render_form_post(self, action: str, fields: Sequence[tuple[str, str]]) -> PageResponse:
        """The `form_post` response page (OAuth 2.0 Form Post Response Mode §2): a form to
        `action` with `fields`, sent by a button and, where scripts run, automatically."""
        body = self.environment.get_template("form_post.html").render(
            action=action, fields=fields, script=AUTO_SUBMIT_SCRIPT
        )
        headers = (
            ("Content-Type", "text/html; charset=utf-8"),
            *security_headers(form_targets=[action], allow_self_forms=False, scripts=True),
        )
        return PageResponse(200, headers, body)
