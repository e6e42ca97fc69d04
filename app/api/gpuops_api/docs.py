"""Swagger UI at /docs, served with its assets from this API, never from a CDN.

The JavaScript, CSS and icon are the Swagger UI distribution that the
fastapi-offline package ships (a pinned wheel in the API image), mounted at
/docs/static; the page is FastAPI's own get_swagger_ui_html pointed at them.
Swagger UI's online validator (which would send the document's URL to a
third party) is switched off.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
STATIC_URL = "/docs/static"
#: The files the page loads from STATIC_URL.
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def assets_dir() -> Path:
    """The directory of the Swagger UI files; RuntimeError when the package lacks one."""
    directory = Path(str(files("fastapi_offline").joinpath("static")))
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"the fastapi-offline package has no {', '.join(missing)} in {directory}: "
                           "reinstall app/api/requirements.txt")
    return directory


def install_docs(app: FastAPI) -> None:
    """Add /docs, its OAuth2 redirect page and the static assets (create the app with docs_url=None)."""
    app.mount(STATIC_URL, StaticFiles(directory=assets_dir()), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
