"""Base-URL failover: requests go to the URL in use; one that refuses connections is skipped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .errors import JobClientError

__all__ = ["Failover", "base_url_list"]


def base_url_list(base_url: str | Sequence[str]) -> tuple[str, ...]:
    """One URL or several, stripped and without a trailing `/`; ValueError if none is given."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    if not urls or not all(isinstance(url, str) and url.strip() for url in urls):
        raise ValueError("base_url must be a non-empty URL or a non-empty list of URLs")
    return tuple(url.strip().rstrip("/") for url in urls)


class Failover:
    """Sends each request to the base URL in use, moving on to the next ones on connect errors.

    Only a failure to connect moves on: the request never reached a server, so even a POST is
    safe to send elsewhere. The URL that accepted the connection is kept for the next requests.
    """

    def __init__(self, http: httpx.AsyncClient, urls: tuple[str, ...]) -> None:
        self.http = http
        self.urls = urls
        self.active = 0
        """Index in `urls` of the URL in use (the last one that accepted a connection)."""

    @property
    def url(self) -> str:
        """The base URL in use."""
        return self.urls[self.active]

    async def send(
        self,
        method: str,
        path: str,
        *,
        timeout: httpx.Timeout,
        headers: Mapping[str, str],
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        stream: bool = False,
    ) -> httpx.Response:
        """The response of the first URL, from the active one on, that accepts the connection.

        When every URL refuses, `JobClientError` (`connection_failed`, no status) names them
        all. Other transport errors (the answer never came) are raised as they are.
        """
        count = len(self.urls)
        failures: list[str] = []
        last: httpx.TransportError | None = None
        for offset in range(count):
            index = (self.active + offset) % count
            request = self.http.build_request(
                method,
                self.urls[index] + path,
                params=params,
                json=json,
                headers=headers,
                timeout=timeout,
            )
            try:
                response = await self.http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                failures.append(f"{self.urls[index]} ({error or type(error).__name__})")
                last = error
                continue
            self.active = index
            return response
        raise JobClientError(
            None, "connection_failed", "could not connect to " + ", ".join(failures)
        ) from last
