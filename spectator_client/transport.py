"""HTTP to the Spectator API: where the server is, the token, and errors turned into typed ones."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from spectator_client.errors import ServerUnavailable, error_for_response

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1/"
DEFAULT_TIMEOUT = 10.0


def server_url_resolve(server_url: str | None = None, game_server_url: str | None = None) -> str:
    """The server's base URL: the argument, the seed's ``game_server_url``, ``$SPECTATOR_URL``, or localhost."""
    url = server_url or game_server_url or os.environ.get("SPECTATOR_URL") or DEFAULT_SERVER_URL
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url


def api_token_resolve(api_token: str | None = None) -> str | None:
    """The API token: the argument, else ``$SPECTATOR_TOKEN``; an empty string means anonymous."""
    token = os.environ.get("SPECTATOR_TOKEN") if api_token is None else api_token
    return token or None


@dataclass(frozen=True)
class ApiConfig:
    server_url: str
    api_token: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def build(
        cls,
        server_url: str | None = None,
        api_token: str | None = None,
        *,
        game_server_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ApiConfig:
        return cls(server_url_resolve(server_url, game_server_url), api_token_resolve(api_token), timeout)

    @property
    def api_url(self) -> str:
        return self.server_url + API_PREFIX

    @property
    def origin(self) -> str:
        """The Origin a WebSocket sends: the server's own, which its allowed-hosts check accepts."""
        parts = urlsplit(self.server_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def websocket_base(self) -> str:
        parts = urlsplit(self.server_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}"

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "spectator-client"}
        if self.api_token:
            headers["Authorization"] = f"Bearer {self.api_token}"
        return headers


def response_data(response: httpx.Response) -> Any:
    """Return the decoded body of a successful response; raise the typed error otherwise."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = response.text
    if response.is_success:
        return body
    raise error_for_response(response.status_code, body, response.headers, path=response.request.url.path)


def unavailable(exc: httpx.TransportError, method: str, url: str) -> ServerUnavailable:
    return ServerUnavailable(f"{method} {url} failed: {exc.__class__.__name__} {exc}".strip(), code="unreachable")


class AsyncApi:
    """An ``httpx.AsyncClient`` for the API, recreated if the caller moves to another event loop."""

    def __init__(self, config: ApiConfig, *, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Anonymous visitors are recognized by this token (and the session cookie the client keeps).
        self.visitor_tokens: dict[str, str] = {}

    def _client_for_loop(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                base_url=self.config.api_url,
                headers=self.config.headers(),
                timeout=self.config.timeout,
                transport=self._transport,
            )
            self._loop = loop
        return self._client

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        client = self._client_for_loop()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unavailable(exc, method, path) from exc
        return response_data(response)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return await self.request("POST", path, json=json if json is not None else {}, **kwargs)

    async def patch(self, path: str, json: Any) -> Any:
        return await self.request("PATCH", path, json=json)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    async def get_all(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paginated list (``{"results": [...], "next": url}``) or a plain list."""
        page = await self.get(path, **params)
        if isinstance(page, list):
            return page
        items = list(page.get("results", []))
        while page.get("next"):
            page = await self.request("GET", page["next"])
            items.extend(page.get("results", []))
        return items

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()


class SyncApi:
    """A blocking ``httpx.Client`` for the API; the background sender of ``SpectatorStream`` uses it."""

    def __init__(self, config: ApiConfig, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        self._client = httpx.Client(
            base_url=config.api_url, headers=config.headers(), timeout=config.timeout, transport=transport
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unavailable(exc, method, path) from exc
        return response_data(response)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json if json is not None else {}, **kwargs)

    def close(self) -> None:
        self._client.close()
