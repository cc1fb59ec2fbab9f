"""The HTTP side: `create_app()` (FastAPI) and a uvicorn runner with a graceful stop."""

from .app import ServerState, create_app
from .serve import NarrationServer, make_server, serve
from .settings import ServerSettings

__all__ = ["NarrationServer", "ServerSettings", "ServerState", "create_app", "make_server", "serve"]
