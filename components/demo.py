"""`make demo`: start the local stack, ask the seed's example through the graph, print the answer.

The same path the app uses: POST to the InferenceGraph router, which calls the KServe model
servers. The stack is stopped again afterwards.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime

import httpx

from components.local_stack import LocalStack
from naviyam.bounds import TRAFFIC_HEADER
from naviyam.clock import LOCAL_TZ
from naviyam.config import Settings

EXAMPLE = {"user_id": "user_123", "text": "급식카드 되는 치킨집 추천해줘"}
DEMO_TIME = "2026-12-02T15:40:00"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="components.demo")
    parser.add_argument("--text", default=EXAMPLE["text"])
    parser.add_argument("--user-id", default=EXAMPLE["user_id"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.load()
    # The demo shows a child asking on a Wednesday after school, whenever it is run: the stack's
    # clock is pinned there (a pinned clock never advances), and the turn is labelled as a demo
    # so the learning loop does not train on it.
    settings = settings.model_copy(update={"clock": settings.clock.model_copy(
        update={"pinned_at": datetime.fromisoformat(DEMO_TIME).replace(tzinfo=LOCAL_TZ)})})
    s = settings.serving
    print(f"starting the local stack (KServe model servers + graph router on {s.host}:{s.router_port}) ...",
          file=sys.stderr, flush=True)
    with LocalStack(settings, log_dir=settings.home / "logs"):
        request = {"user_id": args.user_id, "text": args.text, "timestamp": DEMO_TIME}
        print(f"POST http://{s.host}:{s.router_port}/ {json.dumps(request, ensure_ascii=False)}", file=sys.stderr)
        resp = httpx.post(f"http://{s.host}:{s.router_port}/", json=request, timeout=30,
                          headers={TRAFFIC_HEADER: "demo"})
    if resp.status_code != 200:
        print(f"error {resp.status_code}: {resp.text}", file=sys.stderr)
        return 1
    body = resp.json()
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        print(body["response"])
        md = body["metadata"]
        print(f"\n[{md['intent']} · {md['recommendation_method']} · {body['response_time'] * 1000:.0f} ms · "
              f"degraded={md['degraded']}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
