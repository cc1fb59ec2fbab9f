"""The live web viewer at `/ui/`: static pages (HTML, CSS, JS modules) shipped in the package.

`install_ui(app)` mounts them and redirects `/` and `/ui` there. The pages use relative URLs
(`../v1/jobs`), so the viewer also works when the narration app is mounted under a prefix.
Nothing is built or fetched at run time.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["STATIC_DIR", "UI_PATH", "ViewerFiles", "install_ui"]

STATIC_DIR = Path(__file__).parent / "static"
"""Where the viewer's files are."""

UI_PATH = "/ui"
"""Where the viewer is served (below the app's mount prefix)."""

_SECURITY_HEADERS = {
    # The pages load only their own files, talk only to their own server, and render event
    # text as text: a narrated string can never run as code or pull anything in.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ViewerFiles(StaticFiles):
    """The viewer's static files, each sent with a strict content security policy."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_SECURITY_HEADERS)
        return response


def install_ui(app: Starlette) -> None:
    """Serve the viewer at `/ui/` and send `/` there."""
    app.router.routes.append(
        Mount(UI_PATH, app=ViewerFiles(directory=STATIC_DIR, html=True), name="narration-ui")
    )

    async def to_viewer(request: Request) -> Response:
        # A path, not a URL: the Host header (anyone's to set) never makes it into Location.
        return RedirectResponse(request.url_for("narration-ui", path="/").path, status_code=307)

    app.router.add_route("/", to_viewer, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.add_route(UI_PATH, to_viewer, methods=["GET", "HEAD"], include_in_schema=False)
