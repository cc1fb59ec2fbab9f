"""`ServiceError`: the root of the reference services' errors (see `narration.errors`)."""

from __future__ import annotations

from ..errors import NarrationError

__all__ = ["ServiceError"]


class ServiceError(NarrationError):
    """A reference service (queen, hive, worker) could not do what it was asked."""
