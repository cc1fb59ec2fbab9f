"""`NarrationError`, the root of every exception narration raises, and where each one lives.

    NarrationError
    ├── OperationError (ValueError)       a request body is not JSON, names no known operation,
    │                                     or has bad fields (code: invalid_json,
    │                                     unknown_operation, invalid_fields)     narration.jobs
    ├── RegistryError (TypeError)         a JobRegistry cannot serve (a handler without a
    │                                     model, a model without a handler, a bad name)
    ├── JobError                          about one job                         narration.jobs
    │   ├── UnknownJobError (LookupError) no such job here (never existed, or expired)
    │   ├── JobFinishedError              it already reached a final state
    │   ├── NotAcceptingError             the server is at capacity or stopping
    │   └── IllegalTransitionError        a state change the lifecycle forbids
    ├── StoreUnavailableError             the store cannot be reached right now  narration.store
    ├── ArchiveError                      a finished job could not be archived (yet)
    │                                                                       narration.archive
    ├── ProcessFailedError                a captured child process exited non-zero
    │                                                                    narration.propagation
    ├── JobClientError                    a request of the client failed         narration.client
    ├── ApiError                          an HTTP error answered as JSON         narration.server
    └── ServiceError                      the reference services                narration.services
        ├── HiveError
        │   ├── UnknownHiveError, HiveUnreachableError, HiveLostError, HiveFailedError
        └── WorkerFailedError

Each class is defined next to the code that raises it; `except NarrationError` catches them
all. Programming errors (a non-str action given to `n()`) stay plain `TypeError`s.
"""

from __future__ import annotations

__all__ = ["JobError", "NarrationError"]


class NarrationError(Exception):
    """Anything narration raises on purpose."""


class JobError(NarrationError):
    """Something about one job: unknown, finished, not accepted, or an illegal transition."""
