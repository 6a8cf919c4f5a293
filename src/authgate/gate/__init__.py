"""`authgate.gate`: the verifier core and the policy engine joined into one request decision,
shared by the ASGI/WSGI middleware, the gateway and the forward-auth endpoint (RFC 6750 §2-§3,
RFC 9728).

- `Gate(config).check(GateRequest(...)) -> Decision` (async) and `check_nowait` (sync, may return
  `Pending` for `verify_pending`);
- `GateConfig`/`RouteConfig` (frozen data), `GateMode` (who decides requests no route matches),
  `load_gate_config(path, extension=...)` (TOML);
- `error_answer`/`www_authenticate` (RFC 6750 answers), `ResourceMetadata` (RFC 9728).
"""

from authgate.gate.challenge import Answer, error_answer, www_authenticate
from authgate.gate.config import ConfigExtension, GateConfig, GateMode, RouteConfig
from authgate.gate.credentials import CredentialRules, extract_credential
from authgate.gate.loader import load_gate_config, parse_gate_config
from authgate.gate.pipeline import Decision, Gate, GateRequest, Outcome, Pending, RatePending
from authgate.gate.resource_metadata import WELL_KNOWN_PATH, ResourceMetadata

__all__ = [
    "WELL_KNOWN_PATH",
    "Answer",
    "ConfigExtension",
    "CredentialRules",
    "Decision",
    "Gate",
    "GateConfig",
    "GateMode",
    "GateRequest",
    "Outcome",
    "Pending",
    "RatePending",
    "ResourceMetadata",
    "RouteConfig",
    "error_answer",
    "extract_credential",
    "load_gate_config",
    "parse_gate_config",
    "www_authenticate",
]
