"""The ceiling: the same HTTP stack as rdevents (uvicorn, httptools, uvloop, Starlette, orjson),
answering a constant body to the same POST, with no validation and no storage."""

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
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)
