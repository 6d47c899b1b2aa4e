"""OAuth 2.0 client credentials for the CXone API.

The token is cached and refreshed a little before it expires (a fifth of its
lifetime, at most a minute early). However many jobs need a token at once,
only one request goes to the token endpoint; the rest wait for its answer.
Neither the client secret nor a token is ever put in a log line or an error.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

import httpx

from processor.errors import (
    AuthenticationError,
    RetryableApiError,
    UntrustedCertificateError,
)
from processor.logs import redact
from processor.settings import Settings

log = logging.getLogger(__name__)

_MAX_EARLY_REFRESH_S = 60.0
_EARLY_REFRESH_SHARE = 0.2
# How far down an error's causes a certificate failure is looked for.
_MAX_CAUSES = 8


class TokenSource:
    """Hands out a valid access token, fetching a new one when needed."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._url = httpx.URL(f"{settings.cxone_base_url}/oauth/v2/token")
        self._form = {
            "grant_type": "client_credentials",
            "client_id": settings.cxone_client_id,
            "client_secret": settings.cxone_client_secret.reveal(),
            "scope": settings.cxone_scope,
        }
        redact.add(settings.cxone_client_secret.reveal())
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def token(self) -> str:
        """A token that is not about to expire."""
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token

        async with self._lock:
            # Another job may have refreshed it while this one waited.
            token = self._token
            if token is not None and self._clock() < self._refresh_at:
                return token
            return await self._fetch()

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after a 401, unless it was already replaced."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> str:
        try:
            answer = await self._client.post(self._url, data=self._form)
        except httpx.TransportError as exc:
            if _certificate_refused(exc):
                raise UntrustedCertificateError(
                    f"the TLS certificate of {self._url} cannot be verified "
                    f"({_certificate_reason(exc)}): trust its CA with "
                    "CXONE_CA_BUNDLE, or check CXONE_BASE_URL"
                ) from None
            raise RetryableApiError(
                f"token endpoint unreachable: {type(exc).__name__}: {exc}"
            ) from None

        if answer.status_code >= 500 or answer.status_code == 429:
            raise RetryableApiError(
                f"token endpoint answered {answer.status_code}", answer.status_code
            )
        if answer.status_code != 200:
            raise AuthenticationError(
                f"CXone refused the client credentials ({answer.status_code} "
                f"{_oauth_error(answer)}): check CXONE_CLIENT_ID, CXONE_CLIENT_SECRET "
                "and CXONE_SCOPE",
                answer.status_code,
            )

        token, lifetime = _parse_token(answer)
        early = min(_MAX_EARLY_REFRESH_S, lifetime * _EARLY_REFRESH_SHARE)
        redact.add(token)
        self._token = token
        self._refresh_at = self._clock() + lifetime - early
        self.refreshes += 1
        log.debug("fetched an access token valid for %.0f s", lifetime)
        return token


def _parse_token(answer: httpx.Response) -> tuple[str, float]:
    try:
        payload = answer.json()
        token = payload["access_token"]
        lifetime = float(payload.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError):
        raise RetryableApiError(
            "token endpoint answered 200 without a usable token"
        ) from None
    if not isinstance(token, str) or not token or lifetime <= 0:
        raise RetryableApiError("token endpoint answered 200 without a usable token")
    return token, lifetime


def _oauth_error(answer: httpx.Response) -> str:
    # Only the standard error code is shown: a body could echo what was sent.
    try:
        code = answer.json().get("error")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and code.isidentifier() else "no error code"


def _certificate_refused(exc: BaseException) -> bool:
    return _certificate_error(exc) is not None


def _certificate_reason(exc: BaseException) -> str:
    error = _certificate_error(exc)
    return getattr(error, "verify_message", None) or str(error)


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure somewhere in ``exc``'s causes."""
    seen: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        found = getattr(seen, "certificate_error", None)  # aiohttp's wrapper
        if isinstance(found, ssl.SSLCertVerificationError):
            return found
        seen = seen.__cause__ or seen.__context__
    return None
