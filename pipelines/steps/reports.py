"""The pipelines' HTML reports (and the timestamp the loop state records)."""
from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any


def html_report(title: str, sections: dict[str, Any]) -> str:
    def render(value: Any) -> str:
        if isinstance(value, dict):
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{render(v)}</td></tr>" for k, v in value.items())
            return f"<table>{rows}</table>"
        if isinstance(value, float):
            return f"{value:.4f}"
        return html.escape(str(value))

    body = "".join(f"<h2>{html.escape(k)}</h2>{render(v)}" for k, v in sections.items())
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #ccc;" \
            "padding:4px 8px;text-align:left;vertical-align:top}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
