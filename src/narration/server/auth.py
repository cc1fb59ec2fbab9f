"""Who may call the API: bearer API keys with scopes, or your own authenticator, behind one guard.

    settings: api_keys=("alice:submit+read:<sha256 hex of her key>",)  # NARRATION_API_KEYS
    @app.get("/v1/mine", dependencies=[require("read")])               # any route, yours too

Every job route takes `principal: Principal = require("<scope>")`: it authenticates the request
(401 `unauthorized` without a valid credential), checks the scope (403 `forbidden`) and leaves
the principal in `request.state.principal`. Scopes: `submit` (POST /v1/jobs), `read` (list,
get, stream), `cancel` (DELETE), `admin` (all of them, on every tenant's jobs). A job belongs to
the tenant of the principal that submitted it; other tenants get 404 for it (`visible`).

API keys are random strings (`narration keys new` makes one); the server keeps only their
SHA-256 (`name:scopes:sha256hex[:tenant]`, scopes joined by `+`, the tenant defaulting to the
name) and compares digests in constant time. Your own authenticator (OIDC/JWT, a header set
by an mTLS proxy, ...) is `create_app(auth=fn)`: `fn(request)` (sync or async) returns a
`Principal`, or None for 401. Without keys or `auth`, the server answers only on loopback,
and only when the bind was loopback too (or auth was turned off explicitly with `--no-auth`);
see docs/SECURITY.md.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.security import HTTPBearer
from starlette.requests import Request
from starlette.types import Scope

from ..store.base import JobRecord
from .errors import ApiError

__all__ = [
    "ANONYMOUS",
    "SCOPES",
    "ApiKeys",
    "AuthPolicy",
    "Authenticator",
    "Canceller",
    "Principal",
    "Reader",
    "Submitter",
    "hash_key",
    "is_loopback",
    "new_key",
    "require",
    "visible",
]

SCOPES = ("submit", "read", "cancel", "admin")
"""What a credential may do: submit jobs, read them (list, get, stream), cancel them, or all
of it on every tenant's jobs (`admin`)."""

_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_HEX = re.compile(r"[0-9a-f]{64}")
KEY_PREFIX = "nrk_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a `name`, the `tenant` whose jobs it sees, and its `scopes`."""

    name: str
    tenant: str | None
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """True when this principal holds `scope` (or `admin`, which holds every scope)."""
        return scope in self.scopes or "admin" in self.scopes

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


ANONYMOUS = Principal("anonymous", None, frozenset(SCOPES))
"""The caller when authentication is off: every scope, every job."""

Authenticator = Callable[[Request], "Principal | Awaitable[Principal | None] | None"]
"""Your authentication: the request in, a `Principal` (or None: 401) out; sync or async."""


def new_key() -> str:
    """A new API key: 32 random bytes, URL-safe (give it to the client; keep only its hash)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest of `key`: what the server is configured with."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    principal: Principal


class ApiKeys:
    """Bearer API keys, known by their SHA-256 (`name:scopes:sha256hex[:tenant]` each)."""

    def __init__(self, specs: Iterable[str]) -> None:
        self._entries = tuple(self._parse(spec) for spec in specs if spec.strip())
        if not self._entries:
            raise ValueError("no API keys given")

    @classmethod
    def from_settings(cls, specs: Iterable[str], file: str | None) -> ApiKeys | None:
        """Keys from settings and from `file` (one spec a line, `#` comments); None if none."""
        lines = [spec for spec in specs if spec.strip()]
        if file:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read the API keys file {file}: {exc.strerror}") from None
            lines += [line.split("#", 1)[0] for line in text.splitlines()]
            lines = [line.strip() for line in lines if line.strip()]
        return cls(lines) if lines else None

    @staticmethod
    def _parse(spec: str) -> _Entry:
        parts = spec.strip().split(":")
        if len(parts) not in (3, 4):
            raise ValueError(
                f"API key spec {_shown(spec)} is not name:scopes:sha256hex[:tenant] "
                "(`narration keys new` prints one)"
            )
        name, scopes_text, digest = parts[:3]
        tenant = parts[3] if len(parts) == 4 else name
        scopes = frozenset(scope.strip() for scope in scopes_text.split("+") if scope.strip())
        if not _NAME.fullmatch(name) or not _NAME.fullmatch(tenant):
            raise ValueError(
                f"API key spec {_shown(spec)}: name and tenant are 1-64 [A-Za-z0-9._@-]"
            )
        unknown = scopes - set(SCOPES)
        if not scopes or unknown:
            raise ValueError(
                f"API key spec {_shown(spec)}: scopes are {'+'.join(SCOPES)} "
                f"(joined by +){'; unknown: ' + ', '.join(sorted(unknown)) if unknown else ''}"
            )
        if not _HEX.fullmatch(digest.lower()):
            raise ValueError(f"API key spec {_shown(spec)}: the hash is 64 hex digits (SHA-256)")
        return _Entry(bytes.fromhex(digest), Principal(name, tenant, scopes))

    def check(self, key: str) -> Principal | None:
        """The principal of `key`, or None; every configured digest is compared (constant
        time, whatever matches)."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found: Principal | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        return found

    def __call__(self, request: Request) -> Principal | None:
        """The principal of the request's `Authorization: Bearer <key>`, or None."""
        key = bearer_token(request.headers.get("authorization"))
        return self.check(key) if key is not None else None

    def __len__(self) -> int:
        return len(self._entries)


def _shown(spec: str) -> str:
    """A spec in an error message, its hash left out."""
    parts = spec.strip().split(":")
    if len(parts) >= 3:
        parts[2] = "…"
    return repr(":".join(parts)[:120])


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if not host:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_address(scope: Scope) -> str | None:
    server = scope.get("server")
    return str(server[0]) if server else None


class AuthPolicy:
    """How this server authenticates: an authenticator, or none (`off`: told so explicitly).

    Without an authenticator and not `off`, requests are served only when they arrive on a
    loopback address (a loopback bind); others get 401 naming what to configure.
    """

    def __init__(self, authenticate: Authenticator | None, *, off: bool = False) -> None:
        self.authenticate = authenticate
        self.off = off and authenticate is None

    @property
    def enabled(self) -> bool:
        """True when requests must carry a credential."""
        return self.authenticate is not None

    async def principal(self, request: Request) -> Principal:
        """The caller; ApiError 401 when it cannot be authenticated."""
        if self.authenticate is None:
            if self.off or is_loopback(_local_address(request.scope)):
                return ANONYMOUS
            raise ApiError(
                401,
                "auth_not_configured",
                "this server has no API keys configured, so it answers only on loopback; "
                "configure keys (NARRATION_API_KEYS) or start it with --no-auth",
            )
        result = self.authenticate(request)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Principal):
            raise unauthorized()
        return result


NO_CREDENTIAL = "send your API key in the Authorization header (see WWW-Authenticate)"


def unauthorized(message: str = NO_CREDENTIAL) -> ApiError:
    """The 401 for a missing or bad credential."""
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="narration"'})


_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="an API key")


def policy_of(request: Request) -> AuthPolicy:
    """The auth policy of the narration server answering `request` (its own app, or the host
    app it is mounted in)."""
    from .app import server_states

    state = getattr(request.app.state, "narration", None)
    if state is None:
        states = server_states(request.app)
        if not states:
            raise RuntimeError("require() guards routes of an app that runs a narration server")
        state = states[0]
    policy: AuthPolicy = state.auth
    return policy


def require(scope: str) -> Any:
    """A FastAPI dependency: the authenticated `Principal`, holding `scope` (else 401/403)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; scopes: {', '.join(SCOPES)}")

    async def guard(request: Request, _: Annotated[Any, Security(_bearer)] = None) -> Principal:
        principal = await policy_of(request).principal(request)
        if not principal.allows(scope):
            raise ApiError(403, "forbidden", f"this credential lacks the {scope!r} scope")
        request.state.principal = principal
        return principal

    return Depends(guard)


Submitter = Annotated[Principal, require("submit")]
"""A route parameter: the caller, holding the `submit` scope."""
Reader = Annotated[Principal, require("read")]
"""A route parameter: the caller, holding the `read` scope."""
Canceller = Annotated[Principal, require("cancel")]
"""A route parameter: the caller, holding the `cancel` scope."""


def visible(principal: Principal, record: JobRecord) -> bool:
    """True when `principal` may see the job of `record` (its tenant's, or any for admin)."""
    return principal.is_admin or (record.tenant is not None and record.tenant == principal.tenant)
