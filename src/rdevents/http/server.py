"""Running the app under uvicorn, with the shutdown rdevents promises."""

from __future__ import annotations

from typing import Any

import uvicorn


class GracefulServer(uvicorn.Server):
    """On SIGTERM/SIGINT: stop accepting, let in-flight requests and queued writes commit, then
    exit 0 (uvicorn itself re-raises the signal after shutting down, which reads as a failure)."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def run_server(app: Any, host: str, port: int, log_level: str) -> None:
    config = uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools",
                            log_level=log_level, access_log=False, lifespan="on")
    GracefulServer(config).run()
