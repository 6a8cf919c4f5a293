"""What an operator watches: request ids carried into every log line (`request_ids`), JSON or text
log lines (`logs`), the probes `/healthz` and `/readyz` (`health`) and Prometheus `/metrics`
(`metrics`), and the ASGI layer that ties them to each request (`middleware`)."""
