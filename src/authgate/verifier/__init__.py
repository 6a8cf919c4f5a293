"""`authgate.verifier`: the token verifier core shared by the gateway, forward-auth and middleware
(RFC 6750, RFC 7517, RFC 7519, RFC 7662, RFC 8414, RFC 8725, RFC 9068).

No web framework inside: a credential in, a `Principal` or an OAuth error out. See `core` for the
verification steps, `jwks_cache`/`jwks_state` for the key lifecycle, `config` for every setting.
"""

from authgate.config import ConfigError  # re-exported: the toolkit's one configuration error
from authgate.verifier.api_keys import hash_api_key, new_api_key
from authgate.verifier.config import (
    ASYMMETRIC_ALGORITHMS,
    ApiKeyConfig,
    ApiKeyEntry,
    IntrospectionConfig,
    IssuerConfig,
    JWKSCachePolicy,
    TokenCacheConfig,
    VerifierConfig,
)
from authgate.verifier.core import (
    ApiKeyCredential,
    BearerCredential,
    Credential,
    DPoPCredential,
    Verifier,
)
from authgate.verifier.errors import Reason, TokenRejected, VerifierUnavailable
from authgate.verifier.http_fetch import FetchLimits, HttpFetcher
from authgate.verifier.jwks_cache import IssuerStatus
from authgate.verifier.jwks_state import KeyStatus
from authgate.verifier.metrics import IssuerMetrics, LatencyHistogram, VerifierMetrics
from authgate.verifier.principal import ClaimMapping, Principal

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "ApiKeyConfig",
    "ApiKeyCredential",
    "ApiKeyEntry",
    "BearerCredential",
    "ClaimMapping",
    "ConfigError",
    "Credential",
    "DPoPCredential",
    "FetchLimits",
    "HttpFetcher",
    "IntrospectionConfig",
    "IssuerConfig",
    "IssuerMetrics",
    "IssuerStatus",
    "JWKSCachePolicy",
    "KeyStatus",
    "LatencyHistogram",
    "Principal",
    "Reason",
    "TokenCacheConfig",
    "TokenRejected",
    "Verifier",
    "VerifierConfig",
    "VerifierMetrics",
    "VerifierUnavailable",
    "hash_api_key",
    "new_api_key",
]
