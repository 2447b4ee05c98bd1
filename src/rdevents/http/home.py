"""GET /: where to go from here, as a page for a browser and as JSON for everything else."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .. import __version__
from .errors import JSON
from .media import media_type_and_parameters

LINKS = {"docs": "/docs", "openapi": "/openapi.json", "ui": "/ui/", "healthz": "/healthz",
         "readyz": "/readyz"}
_SAYS = {"docs": "the API's interactive documentation", "openapi": "its OpenAPI document",
         "ui": "the dashboard, for an account's administrators", "healthz": "liveness",
         "readyz": "readiness"}
_ITEMS = "\n".join(f'<li><a href="{path}">{path}</a>: {_SAYS[name]}</li>'
                    for name, path in LINKS.items())
_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rdevents {__version__}</title></head>
<body><h1>rdevents {__version__}</h1>
<p>A self-hosted, wire-compatible RD Station Marketing Events API.</p>
<ul>
{_ITEMS}
</ul>
</body></html>
"""
_VARY = {"Vary": "Accept"}


def _quality(accept: str, media_type: str) -> float:
    """The weight an Accept header gives `media_type`: that of its most specific match."""
    kind = media_type.split("/", 1)[0]
    specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}
    best, best_rank = 0.0, -1
    for item in accept.split(","):
        name, parameters = media_type_and_parameters(item)
        rank = specificity.get(name, -1)
        if rank <= best_rank:
            continue
        try:
            weight = float(parameters.get("q", "1"))
        except ValueError:
            weight = 0.0
        best, best_rank = weight, rank
    return best


async def home(request: Request) -> Response:
    accept = request.headers.get("accept", "")
    if _quality(accept, "text/html") > _quality(accept, "application/json"):
        return HTMLResponse(_PAGE, headers=_VARY)
    return JSON({"name": "rdevents", "version": __version__, "links": LINKS}, headers=_VARY)


routes = [Route("/", home, methods=["GET"])]
