"""Entry point of every model-server image: `python -m components.server --model_name NAME ...`.

Takes KServe's own server flags (`--http_port`, `--predictor_host`, `--predictor_protocol`, ...)
plus `--component` when the process is not named after its model (the ranker's transformer and
predictor share the InferenceService name `naviyam-ranker`, as in KServe), or `--components` for
one local process serving several (``serving.colocate``: one ModelServer, one ModelBundle shared
by its models, so the catalog and Kiwi are loaded once; each model keeps its own name and URL).

`GET /metrics` (KServe's, prometheus_client's default registry) carries KServe's request
histograms and this process's ``naviyam_*`` metrics (naviyam.metrics, components/README.md).
"""
from __future__ import annotations

import argparse
import asyncio
import logging

import uvloop
from kserve import model_server
from prometheus_client import REGISTRY

from components.envelope_model import guard_app
from naviyam.config import Settings
from naviyam.metrics import ChatMetrics
from naviyam.models import ModelBundle

log = logging.getLogger(__name__)

# What this server can run; any of them may also share one process (--components). The predictor
# is also named naviyam-ranker: beside the transformer it is not served, the transformer scores
# with it in-process.
COMPONENTS = ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg",
              "naviyam-ranker-transformer", "naviyam-ranker-predictor")


# What a component's model is called: the transformer answers as its InferenceService.
MODEL_NAMES = {"naviyam-ranker-transformer": "naviyam-ranker"}


def build_model(component: str, model_name: str, settings: Settings, args: argparse.Namespace,
                metrics: ChatMetrics | None = None, models: ModelBundle | None = None):
    # Each branch imports only its own component's module, deliberately: a predictor process
    # loads onnxruntime and the ranker, never the chatbot the nodes and the transformer wrap.
    if component == "naviyam-ranker-transformer":
        from components.ranker_transformer import RankerTransformer

        return RankerTransformer(model_name, settings, channel=args.channel, metrics=metrics, models=models)
    if component == "naviyam-ranker-predictor":
        from components.ranker_predictor import RankerPredictor

        return RankerPredictor(model_name, settings, channel=args.channel)
    from components.nodes import NODES

    return NODES[component](model_name, settings, metrics=metrics, models=models)


def attach_local_steps(models: list) -> list:
    """A ranker transformer calls the step-5 nodes and the predictor of its own process directly;
    returns the models to serve (a predictor beside its transformer is not served itself)."""
    from components.ranker_predictor import RankerPredictor
    from components.ranker_transformer import FANOUT, RankerTransformer

    by_name = {m.name: m for m in models if not isinstance(m, RankerPredictor)}
    predictors = [m for m in models if isinstance(m, RankerPredictor)]
    transformers = [m for m in models if isinstance(m, RankerTransformer)]
    if not transformers:  # a predictor process of its own (or no ranker here): served as it is
        return models
    for model in transformers:
        model.local_steps = {name: by_name[name] for name in FANOUT if name in by_name}
        model.local_predictor = predictors[0] if predictors else None
    return [m for m in models if not isinstance(m, RankerPredictor)]


def install_event_loop(choice: str) -> str:
    """Make KServe's ``--event-loop`` flag hold for this process; returns the loop it runs on.

    kserve 0.21's single-worker ModelServer serves with its own ``asyncio.run()``, so the loop
    uvicorn would pick for ``--event-loop`` ("auto": uvloop when installed) is never set up and
    every request ran on the pure-Python selector loop. A policy set here is what that
    ``asyncio.run()`` uses. The ModelServer also asks for the current loop before it starts
    (``setup_event_loop``), which uvloop's policy refuses unless one is set, hence the loop set here.
    """
    if choice == "asyncio":
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())
    return "uvloop"


def component_list(value: str) -> list[str]:
    names = [c.strip() for c in value.split(",") if c.strip()]
    wrong = [c for c in names if c not in COMPONENTS]
    if wrong or not names:
        raise argparse.ArgumentTypeError(f"--components takes a comma-separated list of {', '.join(COMPONENTS)}; "
                                         f"got {value!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(parents=[model_server.parser], conflict_handler="resolve")
    parser.add_argument("--component", choices=COMPONENTS,
                        help="which component to run (default: the one named like --model_name)")
    parser.add_argument("--components", type=component_list, default=None,
                        help="serve these components from this one process, each under its own model name "
                             f"(comma-separated: {', '.join(COMPONENTS)}); --model_name is then ignored")
    parser.add_argument("--channel", choices=("production", "canary"), default="production",
                        help="ranker: which registry pointer to serve and follow")
    args, _ = parser.parse_known_args(argv)
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.components:
        if "naviyam-ranker-predictor" in args.components and "naviyam-ranker-transformer" not in args.components:
            parser.error("--components: the predictor is only colocated with naviyam-ranker-transformer")
        named = [(c, MODEL_NAMES.get(c, c)) for c in args.components]
    else:
        component = args.component or args.model_name
        if component not in COMPONENTS:
            parser.error(f"unknown component {component!r}; pass --component (one of {', '.join(COMPONENTS)})")
        named = [(component, args.model_name)]
    # One per process, on the default registry: that is the one KServe's /metrics serves.
    metrics = ChatMetrics(REGISTRY)
    shared = ModelBundle(settings)  # one catalog, one Kiwi for every model of this process
    models = [build_model(component, name, settings, args, metrics, shared) for component, name in named]
    for model in models:
        model.load()
    models = attach_local_steps(models)
    loop = install_event_loop(args.event_loop)
    log.info("serving %s on the %s event loop", ", ".join(m.name for m in models), loop)
    server = model_server.ModelServer(http_port=args.http_port, workers=1, enable_grpc=False,
                                      enable_latency_logging=False, event_loop=args.event_loop)
    guard_app(model_server.app)  # body limit and non-echoing 422 on KServe's app, before it serves
    server.start(models)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
