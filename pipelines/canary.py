"""The canary pipeline (an A/B test on live traffic).

route_canary (10 % via the graph's Splitter locally / canaryTrafficPercent on KServe)
  -> simulate_canary_traffic (local demo; no-op when simulate_requests=0) -> observe_canary (CTR, error rate, p95 latency)
  -> dsl.If promote: conclude_canary(promote) | Elif rollback: conclude_canary(rollback) | Else: wait
"""
from kfp import dsl

from pipelines import cluster
from pipelines.components import conclude_canary, note, observe_canary, route_canary, simulate_canary_traffic

NAME = "naviyam-canary"


@dsl.pipeline(name=NAME, description="Route 10% to the canary, compare live metrics, promote or roll back")
def canary_pipeline(home: str = cluster.HOME, config: str = cluster.CONFIG, percent: int = 10,
                    window_s: float = 0.0, min_requests: int = 100, max_error_rate: float = 0.05,
                    max_latency_ratio: float = 1.5, simulate_requests: int = 0, seed: int = 0, apply: bool = False,
                    namespace: str = "", isvc: str = "naviyam-ranker", storage_prefix: str = ""):
    route = route_canary(home=home, config=config, percent=percent, apply=apply, namespace=namespace, isvc=isvc,
                         storage_prefix=storage_prefix)
    route.set_display_name("route canary traffic")
    with dsl.If(route.outputs["has_canary"] == True, name="canary-running"):  # noqa: E712
        # n_requests=0 (the default, and always on a cluster) makes this a no-op; a task inside a
        # dsl.If could not be waited for by observe_canary.
        traffic = simulate_canary_traffic(home=home, config=config, n_requests=simulate_requests, seed=seed)
        traffic.set_display_name("simulated users (local only)")
        observe = observe_canary(home=home, config=config, window_s=window_s, min_requests=min_requests,
                                 max_error_rate=max_error_rate, max_latency_ratio=max_latency_ratio)
        observe.set_display_name("compare canary vs production")
        observe.after(traffic)
        with dsl.If(observe.outputs["decision"] == "promote", name="canary-healthy"):
            promote = conclude_canary(home=home, config=config, decision="promote", reason=observe.outputs["reason"],
                                      apply=apply, namespace=namespace, isvc=isvc)
            promote.set_display_name("promote canary")
        with dsl.Elif(observe.outputs["decision"] == "rollback", name="canary-worse"):
            rollback = conclude_canary(home=home, config=config, decision="rollback",
                                       reason=observe.outputs["reason"], apply=apply, namespace=namespace, isvc=isvc)
            rollback.set_display_name("roll back canary")
        with dsl.Else(name="canary-undecided"):
            wait = note(message="canary kept running: not enough turns yet (run the canary pipeline again)")
            wait.set_display_name("keep observing")
    with dsl.Else(name="no-canary"):
        idle = note(message="no canary running: nothing to do")
        idle.set_display_name("no canary")
    cluster.configure()
