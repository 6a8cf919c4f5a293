"""The TOML configuration: the documented shape, every refusal naming its key, secrets from the
environment or files, resource metadata defaults, and extension keys for the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authgate.gate import ConfigExtension, load_gate_config, parse_gate_config
from authgate.verifier import ConfigError, hash_api_key

MINIMAL_EXAMPLE = """
listen = "127.0.0.1:8080"
[[issuers]]
issuer = "http://127.0.0.1:8000"          # discovery; or jwks_uri = "…"
audiences = ["https://api.example.com"]
[[routes]]
path = "/orders"                          # prefix
methods = ["GET"]                         # optional; default all
upstream = "http://127.0.0.1:9000"
scopes = ["orders:read"]                  # optional; also roles = [...], public = true
"""

FULL = f"""
listen = "0.0.0.0:8080"
realm = "orders-api"
resource = "https://api.example.com"
bearer_methods = ["header", "query"]
max_token_bytes = 8192

[resource_metadata]
resource_name = "Orders API"
resource_documentation = "https://docs.example.com/orders"
dpop_bound_access_tokens_required = false

[[issuers]]
issuer = "https://idp.example.com/realms/shop"
jwks_uri = "https://idp.example.com/realms/shop/certs"
audiences = ["https://api.example.com", "orders"]
algorithms = ["RS256", "ES256"]
typ = "at+jwt"
leeway = 10
required_claims = ["exp", "sub"]
role_claims = ["roles", ["resource_access", "orders", "roles"]]
[issuers.jwks]
min_ttl = 30
max_ttl = 7200
unknown_kid_cooldown = 15
stale_grace = 900
timeout = 3
max_bytes = 65536

[[issuers]]
issuer = "https://hs.example.com"
audiences = ["orders"]
secret_env = "ORDERS_HS_SECRET"

[introspection]
endpoint = "https://idp.example.com/introspect"
client_id = "gate"
client_secret_file = "introspection.secret"
cache_ttl = 30
audiences = ["orders"]

[api_keys]
header = "X-Api-Key"
[[api_keys.keys]]
hash = "{hash_api_key("k" * 43)}"
subject = "reports-job"
scopes = ["orders:read"]

[token_cache]
max_entries = 500
max_ttl = 120

[[routes]]
path = "/healthz"
public = true

[[routes]]
pattern = "/orders/{{id}}"
methods = ["GET"]
scopes = ["orders:read", "orders:admin"]
scopes_match = "any"
upstream = "http://127.0.0.1:9000"

[[routes]]
path = "/admin"
roles = ["admin"]
claims = [
  {{ claim = "tenant", equals = "acme" }},
  {{ claim = ["realm_access", "roles"], contains = "ops" }},
]
"""


def load(tmp_path: Path, text: str, **kwargs: Any) -> Any:
    file = tmp_path / "gate.toml"
    file.write_text(text)
    return load_gate_config(file, **kwargs)


def test_the_minimal_example_loads() -> None:
    config = parse_gate_config(MINIMAL_EXAMPLE)
    assert config.listen == "127.0.0.1:8080"
    (issuer,) = config.verifier.issuers
    assert issuer.issuer == "http://127.0.0.1:8000"
    assert issuer.jwks_uri is None  # discovered
    assert "RS256" in issuer.algorithms
    assert "HS256" not in issuer.algorithms
    (route,) = config.routes
    assert route.upstream == "http://127.0.0.1:9000"
    assert route.route.methods == {"GET", "HEAD"}
    assert route.route.requirement.scopes == ("orders:read",)
    assert config.resource is None


def test_every_documented_key_loads(tmp_path: Path) -> None:
    (tmp_path / "introspection.secret").write_text("from-a-file\n")
    config = load(tmp_path, FULL, environ={"ORDERS_HS_SECRET": "h" * 40})
    assert config.realm == "orders-api"
    assert config.credentials.bearer_methods == {"header", "query"}
    assert config.credentials.api_key_header == "x-api-key"
    assert config.credentials.max_token_bytes == 8192
    keycloak, hs = config.verifier.issuers
    assert keycloak.algorithms == ("RS256", "ES256")
    assert keycloak.claims.roles == (("roles",), ("resource_access", "orders", "roles"))
    assert keycloak.jwks.min_ttl == 30
    assert keycloak.jwks.fetch.max_bytes == 65536
    assert keycloak.required_claims == ("exp", "sub")
    assert hs.secret == b"h" * 40
    assert hs.algorithms == ("HS256",)
    assert config.verifier.introspection is not None
    assert config.verifier.introspection.client_secret == "from-a-file"
    assert config.verifier.token_cache.max_ttl == 120
    health, orders, admin = config.routes
    assert health.route.public
    assert orders.route.requirement.scopes_match == "any"
    assert len(admin.route.requirement.claims) == 2
    resource = config.resource
    assert resource is not None
    doc = resource.document()
    assert doc["resource"] == "https://api.example.com"
    assert doc["authorization_servers"] == [
        "https://idp.example.com/realms/shop",
        "https://hs.example.com",
    ]
    assert doc["scopes_supported"] == ["orders:admin", "orders:read"]
    assert doc["bearer_methods_supported"] == ["header", "query"]
    assert doc["dpop_bound_access_tokens_required"] is False
    assert resource.url == "https://api.example.com/.well-known/oauth-protected-resource"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen = 8080\n" + MINIMAL_EXAMPLE.split("\n", 2)[2], "listen: must be a string"),
        ('lisen = "x"\n' + MINIMAL_EXAMPLE, "lisen: unknown configuration key"),
        (MINIMAL_EXAMPLE + 'scope = ["x"]\n', "routes[0].scope"),
        (MINIMAL_EXAMPLE.replace("audiences", "audience"), "issuers[0].audience"),
        (MINIMAL_EXAMPLE.replace('audiences = ["https://api.example.com"]', ""), "audiences"),
        (MINIMAL_EXAMPLE.replace("http://127.0.0.1:8000", "http://idp.example.com"), "https"),
        (MINIMAL_EXAMPLE + 'algorithms = ["HS256"]\n', "routes[0].algorithms"),
        (MINIMAL_EXAMPLE.replace("audiences", 'algorithms = ["HS256"]\naudiences'), "secret"),
        (MINIMAL_EXAMPLE.replace('methods = ["GET"]', 'methods = "GET"'), "routes[0].methods"),
        (MINIMAL_EXAMPLE.replace("http://127.0.0.1:9000", "ftp://x"), "routes[0].upstream"),
        (MINIMAL_EXAMPLE.replace("127.0.0.1:8080", "nope"), "host:port"),
        ('bearer_methods = ["query"]\n' + MINIMAL_EXAMPLE, "header"),
        ('bearer_methods = ["cookie"]\n' + MINIMAL_EXAMPLE, "bearer_methods"),
        ("[[routes]]\npath = '/'\n", "at least one"),
        (MINIMAL_EXAMPLE + "[[routes]]\npath = '/x'\npattern = '/y'\n", "exactly one"),
        (MINIMAL_EXAMPLE + "[[routes]]\npath = '/x'\npublic = 'yes'\n", "routes[1].public"),
        (MINIMAL_EXAMPLE + "[[routes]]\npath = '/x'\nclaims = [{claim = 'a'}]\n", "exactly one"),
        (MINIMAL_EXAMPLE + "[[routes]]\npath = '/x'\nclaims = [{c = 'a'}]\n", "claims[0].claim"),
        (MINIMAL_EXAMPLE + "[api_keys]\n[[api_keys.keys]]\nhash = 'x'\nsubject = 's'\n", "sha256"),
        (MINIMAL_EXAMPLE + "[resource_metadata]\nresource_name = 'x'\n", "resource"),
        ('resource = "http://api.example.com"\n' + MINIMAL_EXAMPLE, "https"),
        (MINIMAL_EXAMPLE + "[issuers.jwks]\nmin_ttl = 100\nmax_ttl = 10\n", "min_ttl"),
        (MINIMAL_EXAMPLE + "[issuers.jwks]\nmin_tl = 100\n", "issuers[0].jwks.min_tl"),
        ("listen = [", "not valid TOML"),
        ('realm = "Zürich"\n' + MINIMAL_EXAMPLE, "realm"),  # would not encode in a header
        ('realm = "a\\tb"\n' + MINIMAL_EXAMPLE, "realm"),
    ],
)
def test_refusals_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_gate_config(text)
    assert message in str(info.value)


def test_secrets_come_from_the_environment_or_files_only(tmp_path: Path) -> None:
    hs = MINIMAL_EXAMPLE.replace("audiences", 'secret_env = "HS"\naudiences')
    with pytest.raises(ConfigError, match=r"\$HS is not set"):
        parse_gate_config(hs, environ={})
    with pytest.raises(ConfigError, match="unknown configuration key"):
        parse_gate_config(MINIMAL_EXAMPLE.replace("audiences", 'secret = "inline"\naudiences'))
    short = parse_gate_config
    with pytest.raises(ConfigError, match="32 bytes"):
        short(hs, environ={"HS": "too-short"})
    introspection = MINIMAL_EXAMPLE + (
        "[introspection]\nendpoint = 'https://as.test/i'\nclient_id = 'c'\n"
        "client_secret_file = 'missing.secret'\naudiences = ['orders']\n"
    )
    with pytest.raises(ConfigError, match=r"introspection\.client_secret_file"):
        load(tmp_path, introspection)
    with pytest.raises(ConfigError, match="cannot read"):
        load_gate_config(tmp_path / "absent.toml")


def test_extensions_add_keys_for_the_gateway() -> None:
    def seconds(value: Any, where: str) -> float:
        if not isinstance(value, int | float) or value <= 0:
            raise ValueError("must be a positive number of seconds")
        return float(value)

    def table(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError("must be a table")
        return value

    extension = ConfigExtension(
        top_level={"forward_auth": table, "upstream_timeout": seconds},
        route={"forward_authorization": lambda v, w: bool(v), "timeout": seconds},
        defaults={"upstream_timeout": 30.0},
        route_defaults={"forward_authorization": False},
    )
    text = (
        MINIMAL_EXAMPLE.replace(
            'listen = "127.0.0.1:8080"',
            'listen = "127.0.0.1:8080"\n[forward_auth]\npath = "/_authgate/check"',
        )
        + "timeout = 2.5\n[[routes]]\npath = '/b'\nforward_authorization = true\n"
    )
    config = parse_gate_config(text, extension=extension)
    assert config.extensions == {
        "upstream_timeout": 30.0,
        "forward_auth": {"path": "/_authgate/check"},
    }
    first, second = config.routes
    assert first.extensions == {"forward_authorization": False, "timeout": 2.5}
    assert second.extensions == {"forward_authorization": True}
    with pytest.raises(ConfigError, match=r"routes\[0\].timeout: must be a positive"):
        parse_gate_config(MINIMAL_EXAMPLE + "timeout = -1\n", extension=extension)
    with pytest.raises(ConfigError, match="unknown configuration key"):
        parse_gate_config(MINIMAL_EXAMPLE + "timeout = 1\n")  # not without the extension
    with pytest.raises(ConfigError, match="collides"):
        parse_gate_config(MINIMAL_EXAMPLE, extension=ConfigExtension(top_level={"realm": table}))
