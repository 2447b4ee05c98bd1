"""How many POSTs a second an asyncio HTTP client makes to a local server that answers at once:
the measure behind the webhook sender's choice of client.

    python bench/http_clients.py [--requests 4000]

The server is bench/ceiling_app.py in a process of its own; each client sends the same small
JSON body at concurrency 1, 8 and 32.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from run import Server  # noqa: E402

BODY = b'{"event_type": "WEBHOOK.CONVERTED"}'
HEADERS = {"Content-Type": "application/json"}


async def with_httpx(url: str, concurrency: int, requests: int) -> float:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        async def post() -> None:
            (await client.post(url, content=BODY, headers=HEADERS)).raise_for_status()

        return await _timed(post, concurrency, requests)


async def with_aiohttp(url: str, concurrency: int, requests: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async def post() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                response.raise_for_status()

        return await _timed(post, concurrency, requests)


async def _timed(post, concurrency: int, requests: int) -> float:
    """Requests a second, with at most `concurrency` under way."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await post()

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    server = Server([sys.executable, str(ROOT / "bench" / "ceiling_app.py")], cwd=ROOT,
                    env={"PYTHONPATH": str(ROOT / "src")}, ready_path="/")
    url = f"{server.url}/platform/events"
    try:
        print("| client | concurrency 1 | 8 | 32 |\n| --- | --- | --- | --- |")
        for name, client in (("httpx", with_httpx), ("aiohttp", with_aiohttp)):
            rates = [asyncio.run(client(url, c, args.requests)) for c in (1, 8, 32)]
            print(f"| {name} | " + " | ".join(f"{r:,.0f}/s" for r in rates) + " |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
