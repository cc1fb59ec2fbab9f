"""API keys for the auth tests: a few principals, their keys, and the specs a server takes."""

from __future__ import annotations

from dataclasses import dataclass

from narration.server.auth import hash_key, new_key


@dataclass(frozen=True)
class Key:
    """A principal's API key and the spec that configures a server with it."""

    name: str
    key: str
    spec: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_key(name: str, scopes: str, tenant: str | None = None) -> Key:
    key = new_key()
    spec = f"{name}:{scopes}:{hash_key(key)}" + (f":{tenant}" if tenant else "")
    return Key(name, key, spec)


ADMIN = make_key("root", "admin")
ALICE = make_key("alice", "submit+read+cancel", "acme")
ALICE_BOT = make_key("alice-bot", "read", "acme")  # same tenant as alice, read only
BOB = make_key("bob", "submit+read+cancel", "globex")
READER = make_key("auditor", "read", "globex")
KEYS = (ADMIN, ALICE, ALICE_BOT, BOB, READER)
SPECS = tuple(key.spec for key in KEYS)
