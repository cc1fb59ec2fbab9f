"""The reference services' operations, under the name the public API has always used.

    from narration.operations import Operation, OperationError

The models live with the services (`narration.services.operations`); your own operations are
pydantic models registered with their handlers in a `narration.jobs.JobRegistry`.
"""

from .jobs.errors import OperationError
from .services.operations import (
    REFERENCE_OPERATIONS,
    HiveCheck,
    HiveGet,
    HiveList,
    Infer,
    Operation,
    OperationModel,
    Status,
    WorkerList,
    WorkerSpawn,
)

__all__ = [
    "REFERENCE_OPERATIONS",
    "HiveCheck",
    "HiveGet",
    "HiveList",
    "Infer",
    "Operation",
    "OperationError",
    "OperationModel",
    "Status",
    "WorkerList",
    "WorkerSpawn",
]
