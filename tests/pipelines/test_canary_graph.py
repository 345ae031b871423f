"""The canary graph is generated from naviyam.yaml: valid, a 90/10 Splitter, routed as such."""
from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from inference_graph.canary import (
    CANARY_SERVICE, SPLIT_NODE, canary_manifest, isvc_canary_patch, main, merge_patch, splitter_weights,
    write_canary_graph,
)
from inference_graph.graph_router import GraphRouter
from inference_graph.spec import DEFAULT_CRD_DIR, NAVIYAM_GRAPH, RouterType, crd_validation_errors, load_graph

ROOT = Path(__file__).resolve().parents[2]


def test_generated_graph_validates_and_splits_90_10(tmp_path):
    path = write_canary_graph(tmp_path / "canary.yaml")
    assert path.read_text().startswith("# GENERATED")
    graph = load_graph(path)  # webhook rules + ours, and the CRD schema when ../shared/crds is there
    assert splitter_weights(graph) == {"naviyam-ranker": 90, CANARY_SERVICE: 10}
    assert graph.nodes[SPLIT_NODE].router_type == RouterType.SPLITTER
    rank = next(s for s in graph.nodes["search-then-answer"].steps if s.name == "rank")
    assert rank.node_name == SPLIT_NODE and rank.service_name is None
    assert graph.metadata.annotations["naviyam.io/canary-percent"] == "10"


def test_everything_but_the_ranker_step_is_copied():
    base = load_graph(NAVIYAM_GRAPH).to_manifest()
    canary = canary_manifest()
    assert canary["spec"]["timeout"] == base["spec"]["timeout"]
    assert set(canary["spec"]["nodes"]) == set(base["spec"]["nodes"]) | {SPLIT_NODE}
    for name, node in base["spec"]["nodes"].items():
        for old, new in zip(node["steps"], canary["spec"]["nodes"][name]["steps"]):
            if old.get("serviceName") == "naviyam-ranker":
                assert new["nodeName"] == SPLIT_NODE
                old = {k: v for k, v in old.items() if k != "serviceName"}
                new = {k: v for k, v in new.items() if k != "nodeName"}
            assert old == new


@pytest.mark.skipif(not (DEFAULT_CRD_DIR / "serving.kserve.io_inferencegraphs.yaml").is_file(),
                    reason="KServe CRDs not present")
def test_canary_graph_matches_the_crd():
    assert crd_validation_errors(canary_manifest(percent=25)) == []


def test_bad_percent_and_cli(tmp_path, capsys):
    with pytest.raises(ValueError):
        canary_manifest(percent=0)
    with pytest.raises(ValueError):
        canary_manifest(percent=100)
    assert main(["--percent", "20"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert [s["weight"] for s in doc["spec"]["nodes"][SPLIT_NODE]["steps"]] == [80, 20]


def test_local_router_sends_about_10_percent_to_the_canary(tmp_path):
    graph = load_graph(write_canary_graph(tmp_path / "canary.yaml"))
    names = {"naviyam-nlu", "naviyam-ranker", CANARY_SERVICE, "naviyam-nlg"}
    urls = {n: f"http://{n}/v1/models/{n}:predict" for n in names}
    served = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        service = request.url.host
        body = json.loads(request.content)
        if service == "naviyam-nlu":
            return httpx.Response(200, json={**body, "needs_search": True})
        if service == "naviyam-nlg":
            return httpx.Response(200, json=body)
        served[service] += 1
        return httpx.Response(200, json={**body, "ranked_by": service})

    async def run() -> list[dict]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            router = GraphRouter(graph, urls, client=client, rng=random.Random(7))
            out = []
            for i in range(1000):
                status, body = await router.route({"input": {"text": "치킨", "user_id": f"u{i}"}})
                assert status == 200
                out.append(json.loads(body))
            return out

    answers = asyncio.run(run())
    assert sum(served.values()) == 1000
    assert 70 <= served[CANARY_SERVICE] <= 130          # 10 % of 1000, seeded
    assert {a["ranked_by"] for a in answers} == {"naviyam-ranker", CANARY_SERVICE}


def test_isvc_patches_validate_against_the_crd():
    jsonschema = pytest.importorskip("jsonschema")
    crd_file = DEFAULT_CRD_DIR / "serving.kserve.io_inferenceservices.yaml"
    base_file = ROOT / "manifests" / "base" / "isvc-ranker.yaml"
    if not crd_file.is_file() or not base_file.is_file():
        pytest.skip("InferenceService CRD or the ranker manifest not present")
    crd = yaml.load(crd_file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 2 MB
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")["schema"]["openAPIV3Schema"]
    base = yaml.safe_load(base_file.read_text())
    start = merge_patch(base, isvc_canary_patch(10, version="v0002"))
    assert start["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert start["spec"]["transformer"]["annotations"]["naviyam.io/ranker-version"] == "v0002"
    promoted = merge_patch(start, isvc_canary_patch(None, version="v0002"))
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    abandoned = merge_patch(start, isvc_canary_patch(0))
    assert abandoned["spec"]["transformer"]["canaryTrafficPercent"] == 0
    validator = jsonschema.Draft7Validator(schema)  # not jsonschema.validate: it re-checks the 2 MB schema
    for doc in (start, promoted, abandoned):
        validator.validate(doc)
    # containers and volumes survive the merge patch
    assert promoted["spec"]["predictor"]["containers"] == base["spec"]["predictor"]["containers"]
