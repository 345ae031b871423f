"""Entry point of every model-server image: `python -m components.server --model_name NAME ...`.

Takes KServe's own server flags (`--http_port`, `--predictor_host`, `--predictor_protocol`, ...)
plus `--component` when the process is not named after its model (the ranker's transformer and
predictor share the InferenceService name `naviyam-ranker`, as in KServe).

`GET /metrics` (KServe's, prometheus_client's default registry) carries KServe's request
histograms and this process's ``naviyam_*`` metrics (naviyam.metrics, components/README.md).
"""
from __future__ import annotations

import argparse
import logging

from kserve import model_server
from prometheus_client import REGISTRY

from components.envelope_model import guard_app
from naviyam.config import Settings
from naviyam.metrics import ChatMetrics

COMPONENTS = ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg",
              "naviyam-ranker-transformer", "naviyam-ranker-predictor")


def build_model(component: str, model_name: str, settings: Settings, args: argparse.Namespace,
                metrics: ChatMetrics | None = None):
    if component == "naviyam-ranker-transformer":
        from components.ranker_transformer import RankerTransformer

        return RankerTransformer(model_name, settings, channel=args.channel, metrics=metrics)
    if component == "naviyam-ranker-predictor":
        from components.ranker_predictor import RankerPredictor

        return RankerPredictor(model_name, settings, channel=args.channel)
    from components.nodes import NODES

    return NODES[component](model_name, settings, metrics=metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(parents=[model_server.parser], conflict_handler="resolve")
    parser.add_argument("--component", choices=COMPONENTS,
                        help="which component to run (default: the one named like --model_name)")
    parser.add_argument("--channel", choices=("production", "canary"), default="production",
                        help="ranker: which registry pointer to serve and follow")
    args, _ = parser.parse_known_args(argv)
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    component = args.component or args.model_name
    if component not in COMPONENTS:
        parser.error(f"unknown component {component!r}; pass --component (one of {', '.join(COMPONENTS)})")
    # One per process, on the default registry: that is the one KServe's /metrics serves.
    metrics = ChatMetrics(REGISTRY)
    model = build_model(component, args.model_name, settings, args, metrics)
    model.load()
    server = model_server.ModelServer(http_port=args.http_port, workers=1, enable_grpc=False,
                                      enable_latency_logging=False)
    guard_app(model_server.app)  # body limit and non-echoing 422 on KServe's app, before it serves
    server.start([model])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
