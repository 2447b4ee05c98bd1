"""Running the app under uvicorn, in one process or several, with the shutdown rdevents
promises and bounded connections."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette

from .. import metrics
from ..collector import settle_garbage_collector
from ..config import Settings
from ..logs import log_config
from .app import create_app
from .connections import BoundedProtocol, ConnectionLimits, usable_fds

_SETTINGS_VARIABLE = "RDEVENTS_WORKER_SETTINGS"


def settle_process(app: Starlette) -> None:
    """Once the server's process is set up: its garbage collector (see collector.py), and how
    soon the GIL goes to a thread that waits for it, as its store would have it."""
    settle_garbage_collector()
    sys.setswitchinterval(app.state.store.GIL_SWITCH_INTERVAL)


class GracefulServer(uvicorn.Server):
    """On SIGTERM/SIGINT: stop accepting, let in-flight requests and queued writes commit, then
    exit 0 (uvicorn itself re-raises the signal after shutting down, which reads as a failure)."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def app_from_environment() -> Starlette:
    """The app of a worker process, built from the settings its parent left in the environment."""
    app = create_app(Settings(**orjson.loads(os.environ[_SETTINGS_VARIABLE])))
    settle_process(app)
    return app


def run_server(settings: Settings) -> None:
    """Serve on settings.host and .port, in settings.workers processes, until a signal."""
    host, port, workers = settings.host, settings.port, settings.workers
    log_level, log_format = settings.log_level, settings.log_format
    limits = ConnectionLimits(settings.head_timeout, settings.body_timeout,
                              min(settings.max_connections, usable_fds()))
    options: dict[str, Any] = dict(
        host=host, port=port, loop="uvloop",
        http=functools.partial(BoundedProtocol, limits=limits),
        timeout_keep_alive=settings.keep_alive_timeout,
        forwarded_allow_ips=settings.forwarded_allow_ips, access_log=False, lifespan="on",
        log_level=log_level, log_config=log_config(log_format, log_level))
    if workers == 1:
        app = create_app(settings)
        settle_process(app)
        GracefulServer(uvicorn.Config(app, **options)).run()
        return
    # Several processes share the port; each has its own store and writer, and writes its
    # metrics to files of its own in a directory made for this run.
    os.environ[_SETTINGS_VARIABLE] = orjson.dumps(dataclasses.asdict(settings)).decode()
    directory = metrics.prepare_multiprocess()
    try:
        uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)
    finally:
        metrics.remove_multiprocess(directory)
