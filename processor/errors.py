"""The project's exceptions, all under one root.

::

    ProcessorError
    ├── SettingsError               a setting is missing or invalid (names it)
    ├── InvalidRequest              a job request cannot be decoded or validated
    ├── InvalidActionPatch          an action patch breaks its schema (lists each field)
    ├── ApiError                    the CXone API could not be used
    │   ├── RetryableApiError       5xx, timeouts, refused connections
    │   │   └── UntrustedCertificateError  the API's TLS certificate cannot be verified
    │   ├── ThrottledError          429: wait ``retry_after_s`` and try again
    │   ├── UnauthorizedError       401: the token is missing or expired
    │   ├── RejectedError           any other 4xx: the request itself is wrong
    │   └── AuthenticationError     the token endpoint refused the credentials
    ├── OutputError                 the broker refused an output for good
    └── LocalKafkaError             the local development broker
        ├── BrokerJarsError         Maven could not provide the broker's jars
        └── BrokerStartError        a node exited or never answered metadata

Foreign errors (httpx, librdkafka, fastavro) are translated into these where
they enter the project. Retry policies select by type: only
``RetryableApiError`` spends an attempt; throttling and token expiry do not.
The CLI turns any ``ProcessorError`` into one line on stderr and a non-zero
exit.
"""

from __future__ import annotations


class ProcessorError(Exception):
    """Root of every error this project raises on purpose."""


class SettingsError(ProcessorError):
    """A setting is missing or invalid; the message starts with its name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name = name


class InvalidRequest(ProcessorError):  # noqa: N818 - named for the dead-letter reason
    """A job request that cannot be decoded or validated; the message says why."""


class InvalidActionPatch(ProcessorError):  # noqa: N818 - named like InvalidRequest
    """An action patch that breaks its schema; ``problems`` are ``field: message``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source} is not a valid action patch: {'; '.join(problems)}")
        self.source = source
        self.problems = problems


class ApiError(ProcessorError):
    """The CXone API answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class RetryableApiError(ApiError):
    """A fault worth another attempt: 5xx, a timeout, a refused connection."""


class UntrustedCertificateError(RetryableApiError):
    """The API's TLS certificate failed verification: a set-up problem.

    Retryable while running (a certificate being replaced), but it stops the
    start, where it can only mean the CA is not trusted yet.
    """


class ThrottledError(ApiError):
    """429: the API asks us to wait ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float, body: str = "") -> None:
        super().__init__(message, 429, body)
        self.retry_after_s = retry_after_s


class UnauthorizedError(ApiError):
    """401: the token is missing, unknown or expired."""


class RejectedError(ApiError):
    """A 4xx other than 401 and 429: sending it again cannot help."""


class AuthenticationError(ApiError):
    """The token endpoint did not issue a token."""


class OutputError(ProcessorError):
    """The broker refused an output record for good; the processor must stop."""


class LocalKafkaError(ProcessorError):
    """The local development broker could not be provided."""


class BrokerJarsError(LocalKafkaError):
    """The broker's jars could not be resolved (no Maven, or no Maven Central)."""


class BrokerStartError(LocalKafkaError):
    """A broker node did not come up; the message carries its log tail."""
