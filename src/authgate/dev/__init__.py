"""`authgate dev`: a complete local environment in one command (the authorization server on
SQLite, the gateway, and a demo upstream that echoes the identity it receives), with a demo API,
client and user, for trying authgate and for developing services behind it.

Everything runs as child processes of the command, on 127.0.0.1, with its data in one directory
(`./.authgate-dev` by default). The pieces: `workspace` (paths, ports, configuration files),
`provisioning` (the demo data, through the admin commands), `processes` (start, readiness, stop),
`banner` (what is printed), `environment` (the whole run) and `demo_upstream` (the echo service).
"""
