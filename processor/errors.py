"""The project's exceptions, all under one root.

::

    ProcessorError
    └── LocalKafkaError             the local development broker
        ├── BrokerJarsError         Maven could not provide the broker's jars
        └── BrokerStartError        a node exited or never answered metadata

Callers catch the narrowest class they can act on; the CLI turns any
``ProcessorError`` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations


class ProcessorError(Exception):
    """Root of every error this project raises on purpose."""


class LocalKafkaError(ProcessorError):
    """The local development broker could not be provided."""


class BrokerJarsError(LocalKafkaError):
    """The broker's jars could not be resolved (no Maven, or no Maven Central)."""


class BrokerStartError(LocalKafkaError):
    """A broker node did not come up; the message carries its log tail."""
