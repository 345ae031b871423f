"""The soak run's bookkeeping: memory tracks per process, latency by thirds, the error rate."""
from __future__ import annotations

import asyncio
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from components.soak import MemoryTrack, format_soak, soak


class _Graph(BaseHTTPRequestHandler):
    """Answers like the graph router: a ChatbotResponse-shaped body; every 5th request fails."""

    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.lock:
            type(self).count += 1
            fail = self.count % 5 == 0
        body = json.dumps({"metadata": {"timings_ms": {"nlu": 1.0, "ranking": 2.0}}}).encode()
        self.send_response(500 if fail else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def graph_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Graph)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_memory_track_reports_growth_and_slope():
    track = MemoryTrack("me", psutil.Process(os.getpid()))
    track.at_s, track.rss_mib = [0.0, 30.0, 60.0], [100.0, 105.0, 110.0]
    s = track.summary()
    assert s["growth_mib"] == 10.0 and s["growth_pct"] == 10.0 and s["peak_mib"] == 110.0
    assert s["slope_mib_per_min"] == pytest.approx(10.0)


def test_a_process_that_is_gone_is_skipped_not_fatal():
    proc = psutil.Popen(["true"])
    proc.wait()
    track = MemoryTrack("gone", proc)
    track.sample(1.0)
    assert track.summary() == {"samples": 0}


def test_soak_counts_errors_samples_memory_and_splits_latency_by_thirds(graph_url):
    result = asyncio.run(soak(graph_url, {"this process": os.getpid()}, clients=3, seconds=2.0,
                              texts=["떡볶이 먹고 싶어"], sample_every_s=0.2, warmup_s=0.2))
    assert result["requests"] > 10
    assert result["error_rate"] == pytest.approx(0.2, abs=0.05)  # every 5th answer was a 500
    assert len(result["latency_by_third_ms"]) == 3
    mem = result["memory"]["this process"]
    assert mem["samples"] >= 3 and mem["start_mib"] > 0
    text = "\n".join(format_soak(result))
    assert f"errors {result['error_rate']:.2%}" in text
    assert "this process" in text
