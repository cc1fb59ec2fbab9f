"""The HTTP side: `create_app()` / `mount_narration()` (FastAPI) and a uvicorn runner with a
graceful stop."""

from .app import ServerState, create_app, mount_narration
from .serve import NarrationServer, make_server, serve
from .settings import ServerSettings

__all__ = [
    "NarrationServer",
    "ServerSettings",
    "ServerState",
    "create_app",
    "make_server",
    "mount_narration",
    "serve",
]
