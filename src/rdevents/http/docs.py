"""/openapi.json and the interactive docs at /docs (Swagger UI, served locally)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from ..openapi import build_openapi

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rdevents API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", deepLinking: true});</script>
</body></html>"""


def routes(sandbox: bool) -> list[BaseRoute]:
    document = orjson.dumps(build_openapi(sandbox))

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(_PAGE)

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger"),
    ]
