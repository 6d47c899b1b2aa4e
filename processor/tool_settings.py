"""Settings of the topic tools, ``produce`` and ``tail``.

They load the processor's own settings the way ``run`` does (defaults, then
``--config``, then the environment, then flags), so the topic names,
``KAFKA_*`` properties and ``SCHEMA_REGISTRY_URL`` are the ones the processor
uses. Neither tool calls the CXone API, so neither asks for its credentials.
"""

from __future__ import annotations

import argparse
import os

from confluent_kafka import KafkaError, KafkaException

from processor import schemas
from processor import settings as settings_module
from processor.errors import ProcessorError
from processor.settings import Settings

_FLAGS = {
    "--bootstrap-servers": "KAFKA_BOOTSTRAP_SERVERS",
    "--schema-registry-url": "SCHEMA_REGISTRY_URL",
}

# The settings only the API calls need are required by settings.load; these
# stand in where the environment does not set them, and are never used.
_API_STAND_INS = {
    "CXONE_BASE_URL": "http://127.0.0.1",
    "CXONE_CLIENT_ID": "unused",
    "CXONE_CLIENT_SECRET": "unused",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings, as for run (the environment wins over it)",
    )
    for flag, variable in _FLAGS.items():
        parser.add_argument(flag, metavar="VALUE", help=f"sets {variable}")


def load(args: argparse.Namespace, **flags: str | None) -> Settings:
    """The settings from ``--config``, the environment and the flags given."""
    given = {
        variable: value
        for flag, variable in _FLAGS.items()
        if (value := getattr(args, flag[2:].replace("-", "_"))) is not None
    }
    given.update({name: value for name, value in flags.items() if value is not None})
    environ = {**_API_STAND_INS, **os.environ}
    return settings_module.load(environ, config_file=args.config, flags=given)


def registry(settings: Settings) -> schemas.Registry | None:
    """The Schema Registry client, when ``SCHEMA_REGISTRY_URL`` is set."""
    if settings.schema_registry_url is None:
        return None
    return schemas.registry_client(settings.schema_registry_url)


def kafka_error(what: str, settings: Settings, exc: KafkaException) -> ProcessorError:
    """A librdkafka error met while talking to the brokers, as one line."""
    error = exc.args[0] if exc.args else exc
    reason = error.str() if isinstance(error, KafkaError) else str(error)
    return ProcessorError(f"{what} at {settings.bootstrap_servers}: {reason}")
