"""DPoP through the gateway: one authgate gateway with `[dpop]` on serves the same route to a plain
bearer token and to a DPoP-bound token with a new proof per request (each proof verified, its
`jti` claimed in the gateway's store), measured in interleaved rounds in the same run; reports the
DPoP rate as a share of the bearer rate (issue 13 asks for at least 50 %).

    .venv/bin/python benchmarks/gateway/dpop.py [--duration 5] [--repeat 3] [--connections 16]
        [--alg ES256]

The proofs are made before each DPoP measurement (ES256 by default; one per request wrk may send,
each used once) and fed to wrk by a Lua script, so the load generator does no cryptography. Needs
`wrk` and `nginx`, as `run.py` (whose helpers this uses): the gateway is pinned to the last CPU,
wrk and the upstream to the first. Prints the rates, the gateway's CPU per request and the share;
writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from run import (
    AUDIENCE,
    LOAD_CPU,
    ROOT,
    TEST_CPU,
    JWKSServer,
    cpu_seconds,
    free_port,
    nginx_upstream,
    wait_port,
    wrk,
)

from authgate.jose import JWK, jwt
from tests.support.dpop import DPoPClient

# Each request takes the next proof; past the last one wrk repeats it, which the gateway refuses
# (counted as non-2xx: make enough proofs).
LUA = """
local proofs = {}
local i = 0
local token = os.getenv("DPOP_TOKEN")
local path = os.getenv("DPOP_PATH")
init = function(args)
  for line in io.lines(os.getenv("DPOP_PROOFS")) do proofs[#proofs + 1] = line end
end
request = function()
  i = i + 1
  local proof = proofs[i] or proofs[#proofs]
  return wrk.format("GET", path, {["Authorization"] = "DPoP " .. token, ["DPoP"] = proof})
end
"""


def gateway(directory: Path, port: int, jwks: JWKSServer, upstream: int) -> Any:
    config = directory / "gateway.toml"
    config.write_text(f"""
listen = "127.0.0.1:{port}"
access_log = false
[dpop]
algorithms = ["ES256", "EdDSA", "PS256"]
max_age = "10m"
[[issuers]]
issuer = "{jwks.url}"
jwks_uri = "{jwks.url}/jwks.json"
audiences = ["{AUDIENCE}"]
[[routes]]
path = "/api"
upstream = "http://127.0.0.1:{upstream}"
scopes = ["orders:read"]
""")
    log = (directory / "gateway.log").open("wb")
    process = subprocess.Popen(
        ["taskset", "-c", TEST_CPU, str(Path(sys.executable).with_name("authgate")), "gateway",
         "--config", str(config)],
        stderr=log,
    )  # fmt: skip
    wait_port(port, process, "authgate gateway")
    return process


def dpop_wrk(
    url: str, path: str, connections: int, *, duration: float, token: str, proofs: Path
) -> dict[str, Any]:
    seconds = max(1, round(duration))
    script = proofs.with_suffix(".lua")
    script.write_text(LUA)
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
               "--latency", "--timeout", "5s", "-s", str(script), url]  # fmt: skip
    env = {"DPOP_TOKEN": token, "DPOP_PATH": path, "DPOP_PROOFS": str(proofs), "PATH": "/usr/bin"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", default="16")
    parser.add_argument("--alg", default="ES256", choices=("ES256", "EdDSA", "PS256"))
    parser.add_argument("--proofs", type=int, default=60_000, help="proofs made per measurement")
    args = parser.parse_args()
    kty = {"ES256": "EC", "EdDSA": "OKP", "PS256": "RSA"}[args.alg]
    key = JWK.generate("RSA", alg="RS256", kid="bench-key")
    jwks = JWKSServer(key)
    client = DPoPClient(kty, args.alg)
    now = int(time.time())
    claims = {"iss": jwks.url, "aud": AUDIENCE, "sub": "bench-user", "client_id": "bench",
              "scope": "orders:read", "iat": now, "exp": now + 7200}  # fmt: skip
    bearer = jwt.encode(claims, key, "RS256")
    bound = jwt.encode({**claims, "cnf": {"jkt": client.jkt}}, key, "RS256")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="authgate-dpop-bench-") as tmp:
        work = Path(tmp)
        ports = {"upstream": free_port(), "gateway": free_port()}
        upstream = nginx_upstream(work, ports["upstream"])
        process = gateway(work, ports["gateway"], jwks, ports["upstream"])
        path = "/api/orders"
        url = f"http://127.0.0.1:{ports['gateway']}{path}"
        proofs = work / "proofs.txt"
        try:
            wrk(url, 16, 2.0, {"Authorization": f"Bearer {bearer}"})  # warm-up
            for round_ in range(args.repeat):
                for c in (int(x) for x in args.connections.split(",")):
                    before = cpu_seconds(process.pid)
                    row = wrk(url, c, args.duration, {"Authorization": f"Bearer {bearer}"})
                    row["cpu_us"] = (cpu_seconds(process.pid) - before) / row["requests"] * 1e6
                    runs.append({"target": "bearer", "connections": c, "round": round_, **row})
                    proofs.write_text(
                        "\n".join(
                            client.proof("GET", url, access_token=bound, jti=secrets.token_hex(8))
                            for _ in range(args.proofs)
                        )
                    )
                    before = cpu_seconds(process.pid)
                    drow = dpop_wrk(
                        url, path, c, duration=args.duration, token=bound, proofs=proofs
                    )
                    drow["cpu_us"] = (cpu_seconds(process.pid) - before) / drow["requests"] * 1e6
                    runs.append({"target": "dpop", "connections": c, "round": round_, **drow})
                    print(
                        f"round {round_ + 1} c={c}: bearer {row['rps']:,.0f}/s "
                        f"({row['cpu_us']:.0f} µs CPU), DPoP {drow['rps']:,.0f}/s "
                        f"({drow['cpu_us']:.0f} µs CPU), share {drow['rps'] / row['rps']:.1%}"
                        + (f"  NON-2xx {drow['non_2xx']}" if drow["non_2xx"] else ""),
                        flush=True,
                    )
        finally:
            for p in (process, upstream):
                p.terminate()
                p.wait(10)
    shares = sorted(d["rps"] / b["rps"] for b, d in zip(runs[::2], runs[1::2], strict=True))
    cpu = sorted(b["cpu_us"] / d["cpu_us"] for b, d in zip(runs[::2], runs[1::2], strict=True))
    result = {"alg": args.alg, "runs": runs, "median_share": shares[len(shares) // 2],
              "median_cpu_share": cpu[len(cpu) // 2]}  # fmt: skip
    print(
        f"\nDPoP ({args.alg}, a new proof per request) / bearer, median of {len(shares)}: "
        f"{result['median_share']:.1%} of the requests per second, "
        f"{result['median_cpu_share']:.1%} by CPU per request"
    )
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / f"gateway-dpop-{int(time.time())}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
