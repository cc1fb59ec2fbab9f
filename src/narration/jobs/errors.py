"""The registry's two errors: a request that is not a valid operation, and a registry that
cannot serve (see the tree in `narration.errors`)."""

from __future__ import annotations

from ..errors import NarrationError

__all__ = ["OperationError", "RegistryError"]


class OperationError(NarrationError, ValueError):
    """An operation could not be parsed or built.

    `code` is `unknown_operation`, `invalid_fields` or `invalid_json`; `errors` lists the
    individual problems as `{"loc": "field.path", "msg": "..."}` dicts (empty for unknown
    operations); `str(error)` is the readable message.
    """

    def __init__(self, code: str, message: str, errors: tuple[dict[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors

    def __repr__(self) -> str:
        return f"OperationError(code={self.code!r}, message={self.message!r})"


class RegistryError(NarrationError, TypeError):
    """A registry cannot serve: a handler without a model, a model without a handler, a
    duplicate or badly formed name. Raised when the operation is registered or the server is
    built, never when a job is submitted."""
