"""How the local stack is wired (no process is started here; tests/e2e start real ones)."""
from __future__ import annotations

import yaml

from components.local_stack import LocalStack
from inference_graph.spec import load_graph
from naviyam.config import Settings
from naviyam.registry import ModelRegistry


def test_plain_stack_has_no_canary(tmp_path):
    stack = LocalStack(Settings(home=tmp_path))
    assert "naviyam-ranker-canary" not in stack.components()
    args = stack.router_args()
    assert args[args.index("--graph") + 1].endswith("inference_graph/naviyam.yaml")


def test_a_registry_canary_adds_the_canary_pair_and_the_splitter(tmp_path):
    settings = Settings(home=tmp_path)
    model = tmp_path / "ranker-src"
    model.mkdir()
    (model / "meta.json").write_text('{"version": "x"}')
    registry = ModelRegistry.from_settings(settings)
    v1 = registry.register("ranker", model, {"ndcg@5": 0.4})
    registry.promote("ranker", v1)
    v2 = registry.register("ranker", model, {"ndcg@5": 0.45})
    registry.start_canary("ranker", v2)

    stack = LocalStack(settings)
    assert {"naviyam-ranker-canary", "naviyam-ranker-canary-predictor"} <= set(stack.components())
    transformer = stack.model_server_args("naviyam-ranker-canary")
    assert transformer[transformer.index("--channel") + 1] == "canary"
    assert transformer[transformer.index("--http_port") + 1] == str(settings.serving.ports["naviyam-ranker-canary"])
    assert transformer[transformer.index("--predictor_host") + 1].endswith(
        str(settings.serving.ports["naviyam-ranker-canary-predictor"]))
    args = stack.router_args()
    graph = load_graph(args[args.index("--graph") + 1])
    splitters = [n for n in graph.nodes.values() if n.router_type.value == "Splitter"]
    assert len(splitters) == 1 and sorted(s.weight for s in splitters[0].steps) == [10, 90]
    services = yaml.safe_load(open(args[args.index("--services") + 1]))
    assert "naviyam-ranker-canary" in services


def test_log_directory_is_created_on_a_fresh_tree(tmp_path):
    stack = LocalStack(Settings(home=tmp_path), log_dir=tmp_path / "var" / "logs")
    stack._spawn("probe", ["-c", "print('ok')"])
    stack.procs["probe"].wait(timeout=30)
    assert (tmp_path / "var" / "logs" / "probe.log").read_text().strip() == "ok"


def test_replicas_are_extra_processes_behind_one_service_with_the_retry_policy(tmp_path):
    import pytest

    settings = Settings(home=tmp_path)
    serving = settings.serving.model_copy(update={"replicas": {"naviyam-nlu": 2, "naviyam-ranker": 2}})
    stack = LocalStack(settings.model_copy(update={"serving": serving}))
    assert {"naviyam-nlu@1", "naviyam-ranker@1"} <= set(stack.components())
    assert "naviyam-nlg@1" not in stack.components()
    args = stack.model_server_args("naviyam-ranker@1")
    port = int(args[args.index("--http_port") + 1])
    assert port not in settings.serving.ports.values() and stack.port("naviyam-ranker@1") == port  # kept for restarts
    assert args[args.index("--predictor_host") + 1].endswith(str(settings.serving.ports["naviyam-ranker-predictor"]))
    router = stack.router_args()
    services = yaml.safe_load(open(router[router.index("--services") + 1]))
    assert services["naviyam-nlu"] == [f"{stack.url(c)}/v1/models/naviyam-nlu:predict"
                                       for c in ("naviyam-nlu", "naviyam-nlu@1")]
    assert isinstance(services["naviyam-nlg"], str)
    assert router[router.index("--retries") + 1] == str(serving.retry_attempts)
    assert router[router.index("--retry-on") + 1] == "connect-failure,reset"
    with pytest.raises(ValueError, match="replicas"):
        LocalStack(Settings(home=tmp_path, serving={"replicas": {"naviyam-retriever": 2}}))


def test_make_serve_gets_an_admin_token_kept_out_of_the_log(tmp_path, caplog):
    import logging
    import stat

    from components.local_stack import with_admin_token

    with caplog.at_level(logging.INFO):
        first = with_admin_token(Settings(home=tmp_path))
    token = first.serving.admin_token
    path = tmp_path / "state" / "admin_token"
    assert token and path.read_text() == token and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert with_admin_token(Settings(home=tmp_path)).serving.admin_token == token  # stable across restarts
    assert token not in caplog.text
    configured = Settings(home=tmp_path, serving={"admin_token": "configured"})
    assert with_admin_token(configured).serving.admin_token == "configured"


def test_stop_signal_records_signals_landing_inside_its_own_wait():
    """Signals arriving every millisecond while the main thread polls: the handler never blocks
    (a threading.Event's set() could deadlock on the lock its wait() held) and wait() sees it."""
    import signal

    from components.local_stack import StopSignal

    stop = StopSignal()
    previous = signal.signal(signal.SIGALRM, stop)
    try:
        assert stop.wait(0.05) is False
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.001)
        assert stop.wait(5.0) is True
        assert stop.signum == signal.SIGALRM
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_serving(tmp_path, **serving) -> Settings:
    base = Settings(home=tmp_path)
    return base.model_copy(update={"serving": base.serving.model_copy(update=serving)})


def test_the_graph_services_share_one_model_server_by_default(tmp_path):
    settings = Settings(home=tmp_path)
    stack = LocalStack(settings)
    assert stack.components() == ["naviyam-models", "naviyam-feedback", "router"]
    args = stack.model_server_args("naviyam-models")
    assert args[args.index("--components") + 1].split(",") == [
        "naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg", "naviyam-ranker-transformer",
        "naviyam-ranker-predictor"]
    assert args[args.index("--http_port") + 1] == str(settings.serving.ports["naviyam-models"])
    assert "--predictor_host" not in args  # the transformer scores with the predictor of its own process
    # every service keeps its own model URL, on the shared process's port
    shared = settings.serving.ports["naviyam-models"]
    for service in ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg", "naviyam-ranker"):
        assert settings.serving.predict_url(service) == f"http://127.0.0.1:{shared}/v1/models/{service}:predict"
        assert stack.port(service) == shared
    assert stack.health_url("naviyam-models").endswith(f":{shared}/v2/health/ready")


def test_a_predictor_left_out_gets_its_own_process_and_the_transformer_its_flags(tmp_path):
    settings = _with_serving(tmp_path, colocate=["naviyam-nlu", "naviyam-retriever", "naviyam-candidates",
                                                 "naviyam-nlg", "naviyam-ranker"])
    stack = LocalStack(settings)
    assert stack.components() == ["naviyam-models", "naviyam-ranker-predictor", "naviyam-feedback", "router"]
    args = stack.model_server_args("naviyam-models")
    assert "naviyam-ranker-predictor" not in args[args.index("--components") + 1]
    assert args[args.index("--predictor_host") + 1].endswith(str(settings.serving.ports["naviyam-ranker-predictor"]))
    assert args[args.index("--predictor_protocol") + 1] == "v2"
    assert stack.port("naviyam-ranker-predictor") == settings.serving.ports["naviyam-ranker-predictor"]
    # without its transformer beside it, the predictor is never colocated
    alone = _with_serving(tmp_path, colocate=["naviyam-nlu", "naviyam-ranker-predictor"])
    assert alone.serving.process_of("naviyam-ranker-predictor") == "naviyam-ranker-predictor"


def test_colocate_empty_gives_every_service_its_own_process(tmp_path):
    settings = _with_serving(tmp_path, colocate=[])
    stack = LocalStack(settings)
    assert "naviyam-models" not in stack.components()
    assert {"naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg", "naviyam-ranker",
            "naviyam-ranker-predictor"} <= set(stack.components())
    assert settings.serving.predict_url("naviyam-retriever").endswith(
        f":{settings.serving.ports['naviyam-retriever']}/v1/models/naviyam-retriever:predict")


def test_a_replicated_service_leaves_the_shared_process(tmp_path):
    settings = _with_serving(tmp_path, replicas={"naviyam-nlu": 2})
    stack = LocalStack(settings)
    assert settings.serving.colocated() == ["naviyam-retriever", "naviyam-candidates", "naviyam-nlg", "naviyam-ranker",
                                            "naviyam-ranker-predictor"]
    assert {"naviyam-models", "naviyam-nlu", "naviyam-nlu@1"} <= set(stack.components())
    endpoints = stack.service_endpoints("naviyam-nlu")
    assert endpoints[0].endswith(f":{settings.serving.ports['naviyam-nlu']}/v1/models/naviyam-nlu:predict")


def test_free_ports_are_distinct_and_avoid_the_taken_ones():
    from components.local_stack import free_ports

    taken = free_ports(3)
    picked = free_ports(40, taken=taken)
    assert len(set(picked)) == 40 and not set(picked) & set(taken)


def test_a_replica_port_is_none_of_the_configured_ports(tmp_path):
    settings = Settings(home=tmp_path)
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"replicas": {"naviyam-nlu": 3}})})
    stack = LocalStack(settings)
    configured = {settings.serving.router_port, *settings.serving.ports.values()}
    replicas = [stack.port("naviyam-nlu@1"), stack.port("naviyam-nlu@2")]
    assert len(set(replicas)) == 2 and not set(replicas) & configured
    assert stack.port("naviyam-nlu@1") == replicas[0]  # picked once
