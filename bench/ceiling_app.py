"""The ceiling: the same HTTP stack as rdevents (uvicorn, httptools, uvloop, Starlette, orjson),
answering a constant body to the same POST, with no validation and no storage."""

from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from rdevents.http.errors import JSON

_BODY = {"event_uuid": "5408c5a3-4711-4f2e-8d0b-13407a3e30f3"}


async def constant(request: Request) -> JSON:
    await request.body()
    return JSON(_BODY)


app = Starlette(routes=[Route("/platform/events", constant, methods=["POST"]),
                        Route("/platform/events/batch", constant, methods=["POST"])])

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Several workers import the app by name, and log at info level when each has started.
    uvicorn.run("ceiling_app:app" if args.workers > 1 else app, host="127.0.0.1",
                port=args.port, workers=args.workers, app_dir=str(Path(__file__).parent),
                loop="uvloop", http="httptools", access_log=False,
                log_level="info" if args.workers > 1 else "warning")
