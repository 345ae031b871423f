"""tools/kustomize_lite: the same objects as `kubectl kustomize` for our overlays; refuses what it cannot do."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import kustomize_lite as kl  # noqa: E402

OVERLAYS = sorted(p for p in (ROOT / "manifests" / "overlays").iterdir() if p.is_dir())


def key(obj: dict) -> tuple:
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH: no reference kustomize to compare with")
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_same_build_as_kubectl(overlay: Path):
    proc = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = [d for d in yaml.safe_load_all(proc.stdout) if d]
    got = kl.build(overlay)
    assert [key(o) for o in got] == [key(o) for o in expected]
    for mine, theirs in zip(got, expected):
        assert mine == theirs, f"{key(mine)} differs from kubectl kustomize"


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: "registry:5000/team/app:1"}]
"""


def test_images_namespace_labels_and_json6902(tmp_path: Path):
    write(tmp_path, {
        "base/d.yaml": DEPLOYMENT,
        "base/kustomization.yaml": "resources: [d.yaml]\n",
        "ov/kustomization.yaml": """namespace: ns
resources: [../base]
labels: [{pairs: {team: x}}]
images: [{name: "registry:5000/team/app", newTag: "2"}]
patches:
  - target: {kind: Deployment, name: "d"}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/args, value: [--x]}
      - {op: replace, path: /spec/selector/matchLabels/a, value: c}
""",
    })
    [obj] = kl.build(tmp_path / "ov")
    assert obj["metadata"] == {"name": "d", "namespace": "ns", "labels": {"team": "x"}}
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry:5000/team/app:2"  # the registry port is not a tag
    assert container["args"] == ["--x"]
    assert obj["spec"]["selector"]["matchLabels"] == {"a": "c"}


def test_strategic_merge_patch_with_a_list_is_refused(tmp_path: Path):
    write(tmp_path, {
        "d.yaml": DEPLOYMENT,
        "kustomization.yaml": """resources: [d.yaml]
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: d}
      spec:
        template:
          spec:
            containers: [{name: c, image: other}]
""",
    })
    with pytest.raises(kl.KustomizeError, match="use a JSON6902 patch"):
        kl.build(tmp_path)


@pytest.mark.parametrize("field,value", [("commonLabels", "{a: b}"), ("replicas", "[{name: d, count: 2}]")])
def test_unsupported_fields_are_refused(tmp_path: Path, field: str, value: str):
    write(tmp_path, {"d.yaml": DEPLOYMENT, "kustomization.yaml": f"resources: [d.yaml]\n{field}: {value}\n"})
    with pytest.raises(kl.KustomizeError, match=f"does not support {field}"):
        kl.build(tmp_path)


def test_files_outside_the_root_are_refused(tmp_path: Path):
    write(tmp_path, {"outside.yaml": DEPLOYMENT, "k/kustomization.yaml": "resources: [../outside.yaml]\n"})
    with pytest.raises(kl.KustomizeError, match="outside the kustomization root"):
        kl.build(tmp_path / "k")


def test_hashed_configmaps_are_refused(tmp_path: Path):
    write(tmp_path, {"kustomization.yaml": "configMapGenerator: [{name: c, literals: [A=1]}]\n"})
    with pytest.raises(kl.KustomizeError, match="disableNameSuffixHash"):
        kl.build(tmp_path)


def test_patch_that_matches_nothing_fails(tmp_path: Path):
    write(tmp_path, {"d.yaml": DEPLOYMENT, "kustomization.yaml": """resources: [d.yaml]
patches:
  - target: {kind: StatefulSet}
    patch: |-
      - {op: add, path: /spec/replicas, value: 2}
"""})
    with pytest.raises(kl.KustomizeError, match="matches no object"):
        kl.build(tmp_path)


def test_cli_prints_the_build():
    proc = subprocess.run([sys.executable, "-m", "tools.kustomize_lite", "manifests/overlays/local-kind"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(proc.stdout) if d}
    assert {"InferenceService", "InferenceGraph", "Deployment", "NetworkPolicy"} <= kinds
