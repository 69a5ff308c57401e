"""``agentjournal worker-key``: mint, list and revoke a self-hosted environment's worker keys.

A worker key is what Anthropic's ``EnvironmentWorker`` presents (its
``environment_key``): it opens only that environment's work queue and sessions. The
secret is printed once, when it is minted; the store keeps only its digest.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agentjournal.application.errors import ConfigError

OK = 0


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("worker-key", help="mint, list or revoke a self-hosted environment's worker keys")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    mint = actions.add_parser("mint", help="a new key, printed once")
    mint.add_argument("environment", help="the environment's id (env_...)")
    mint.add_argument("--name", default="", help="a name to tell the key apart in listings")
    mint.set_defaults(handler=_mint)
    listing = actions.add_parser("list", help="the environment's keys (never their secrets)")
    listing.add_argument("environment")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a key: its workers are refused from then on")
    revoke.add_argument("environment")
    revoke.add_argument("key", help="the key's id (wkey_...)")
    revoke.set_defaults(handler=_revoke)


def _environment(args: argparse.Namespace) -> tuple[Any, str]:
    """The store's session service, and the self-hosted environment's id, checked."""
    from agentjournal.application.catalog import Catalog
    from agentjournal.application.store import open_store
    from agentjournal.domain import SelfHostedConfig
    from agentjournal.infrastructure.server.ids import ENVIRONMENT, parse_id

    service = open_store(args.store)
    environment_id = parse_id(ENVIRONMENT, args.environment)
    environment = Catalog(service).get_environment(environment_id)
    if not isinstance(environment.definition.config, SelfHostedConfig):
        raise ConfigError(f"{args.environment} is not a self_hosted environment: worker keys are for those")
    return service, str(environment_id)


def _print(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _mint(args: argparse.Namespace) -> int:
    from agentjournal.infrastructure.server.work import key_json

    service, environment_id = _environment(args)
    minted = service.work.mint_key(environment_id, args.name)
    _print({**key_json(minted.key), "secret": minted.secret})
    return OK


def _list(args: argparse.Namespace) -> int:
    from agentjournal.infrastructure.server.work import key_json

    service, environment_id = _environment(args)
    _print([key_json(key) for key in service.work.keys(environment_id)])
    return OK


def _revoke(args: argparse.Namespace) -> int:
    from agentjournal.infrastructure.server.work import key_json

    service, environment_id = _environment(args)
    _print(key_json(service.work.revoke_key(environment_id, args.key)))
    return OK
