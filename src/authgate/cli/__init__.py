"""The `authgate` command. Each area registers its own command group; heavy imports stay lazy."""

from __future__ import annotations

import click

from authgate import __version__
from authgate.cli.api_key_commands import api_key_group
from authgate.cli.config_commands import config_group
from authgate.cli.dev_commands import dev_command
from authgate.cli.gateway_commands import gateway_command
from authgate.cli.jose_commands import jwk_group
from authgate.cli.jwt_commands import jwt_group
from authgate.cli.server_audit_commands import audit_group
from authgate.cli.server_commands import (
    api_group,
    client_group,
    db_group,
    keys_group,
    serve_command,
    user_group,
)
from authgate.cli.server_consent_commands import consent_group
from authgate.cli.server_registration_commands import registration_token_group
from authgate.cli.server_token_commands import token_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="authgate")
def main() -> None:
    """authgate: OAuth 2.0 authorization server, JOSE tools and API gate."""


main.add_command(jwk_group)
main.add_command(jwt_group)
main.add_command(serve_command)
main.add_command(db_group)
main.add_command(api_group)
main.add_command(client_group)
main.add_command(user_group)
main.add_command(consent_group)
main.add_command(registration_token_group)
main.add_command(audit_group)
main.add_command(keys_group)
main.add_command(token_group)
main.add_command(gateway_command)
main.add_command(api_key_group)
main.add_command(dev_command)
main.add_command(config_group)
