"""State on a cluster: PostgreSQL (manifests/base/postgres.yaml) and the DSN in every state client.

The built overlays are inspected directly (what runs, what mounts what), and the validator's `state`
and `network` checks are exercised on broken copies (the `sandbox` fixture of conftest.py).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import validate_manifests as vm  # noqa: E402

OVERLAYS = ["local-kind", "prod"]
SECRET_REF = {"name": vm.STATE_SECRET, "key": vm.STATE_DSN_KEY}


@functools.lru_cache(maxsize=None)
def built(overlay: str) -> tuple[dict, ...]:
    docs, _ = vm.build_overlay(ROOT / "manifests" / "overlays" / overlay)
    return tuple(docs)


def one(docs, kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} in the build"
    return found[0]


def by_ref(docs) -> dict[str, vm.Workload]:
    return {wl.ref: wl for wl in vm.workloads(list(docs))}


def container(wl: vm.Workload, name: str | None = None) -> dict:
    cs = [c for _, c in vm.containers(wl.pod) if name is None or c["name"] == name]
    assert cs, f"{wl.ref}: no container {name}"
    return cs[0]


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env") or []}


def claims(wl: vm.Workload) -> dict[str, tuple[str, bool]]:
    """mount path -> (claim name, read-only) for every PVC a container of the pod mounts."""
    volumes = {v["name"]: v for v in wl.pod.get("volumes") or []}
    out = {}
    for _, c in vm.containers(wl.pod):
        for m in c.get("volumeMounts") or []:
            pvc = (volumes.get(m["name"]) or {}).get("persistentVolumeClaim")
            if pvc:
                out[m["mountPath"]] = (pvc["claimName"], bool(m.get("readOnly") or pvc.get("readOnly")))
    return out


# -- the built overlays ------------------------------------------------------------------------------

@pytest.mark.usefixtures("kubectl")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_statefulset(overlay: str):
    docs = built(overlay)
    sts = one(docs, "StatefulSet", "naviyam-postgres")
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == "naviyam-postgres"
    (pg,) = pod["containers"]
    name, tag, _ = vm.image_name(pg["image"])
    assert name == "postgres" and tag.split(".")[0] == "18" and tag != "18", "official image, pinned below the major"
    (template,) = spec["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in pg["volumeMounts"]}
    env = env_of(pg)
    # 18+ images: one mount at /var/lib/postgresql, data in a major-version directory under it.
    assert mounts[template["metadata"]["name"]] == "/var/lib/postgresql"
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/18/")
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": vm.STATE_SECRET, "key": "password"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert pg[probe]["exec"]["command"][0] == "pg_isready", probe
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pg["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(pg["resources"]["limits"]) and {"cpu", "memory"} <= set(pg["resources"]["requests"])

    svc = one(docs, "Service", "naviyam-postgres")
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["ports"][0]["port"] == 5432
    assert vm.match_selector({"matchLabels": svc["spec"]["selector"]}, spec["template"]["metadata"]["labels"])
    pdb = one(docs, "PodDisruptionBudget", "naviyam-postgres")
    assert vm.match_selector(pdb["spec"]["selector"], spec["template"]["metadata"]["labels"])
    policy = one(docs, "NetworkPolicy", "postgres-from-state-clients")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [5432]


@pytest.mark.usefixtures("kubectl")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nightly_pg_dump_onto_its_own_volume(overlay: str):
    docs = built(overlay)
    cron = one(docs, "CronJob", "naviyam-postgres-backup")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    wl = by_ref(docs)["CronJob/naviyam-postgres-backup"]
    c = container(wl)
    assert c["image"] == container(by_ref(docs)["StatefulSet/naviyam-postgres"])["image"], \
        "pg_dump must not be older than the server"
    assert "pg_dump" in " ".join(c["command"] + c["args"])
    assert env_of(c)["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": vm.STATE_SECRET, "key": "password"}
    assert claims(wl) == {"/backups": ("naviyam-postgres-backups", False)}
    pvc = one(docs, "PersistentVolumeClaim", "naviyam-postgres-backups")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.usefixtures("kubectl")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_state_clients_read_the_dsn_from_the_secret(overlay: str):
    wls = by_ref(built(overlay))
    clients = {
        "InferenceService/naviyam-nlu/predictor": None,
        "InferenceService/naviyam-nlg/predictor": None,
        "InferenceService/naviyam-ranker/predictor": None,
        "InferenceService/naviyam-ranker/transformer": None,
        "Deployment/naviyam-feedback": None,
        "Job/naviyam-build": "build",   # `naviyam build`: registry, LoRA on the event log
    }
    for ref, name in clients.items():
        dsn = env_of(container(wls[ref], name)).get(vm.STATE_DSN_ENV)
        assert dsn is not None, f"{ref}: no {vm.STATE_DSN_ENV}"
        assert set(dsn) == {"name", "valueFrom"} and dsn["valueFrom"] == {"secretKeyRef": SECRET_REF}, ref
    stateless = ["InferenceService/naviyam-retriever/predictor", "InferenceService/naviyam-candidates/predictor",
                 "CronJob/naviyam-feature-materialize", "Deployment/naviyam-redis"]
    for ref in stateless:
        assert all(vm.STATE_DSN_ENV not in env_of(c) for _, c in vm.containers(wls[ref].pod)), ref
    assert vm.STATE_DSN_ENV not in env_of(container(wls["Job/naviyam-build"], "features"))


@pytest.mark.usefixtures("kubectl")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_serving_pod_writes_a_shared_volume(overlay: str):
    wls = by_ref(built(overlay))
    for ref, wl in wls.items():
        if wl.pod is None or not wl.long_running or wl.kind == "StatefulSet":
            continue
        writable = {path: claim for path, (claim, ro) in claims(wl).items() if not ro}
        assert not writable, f"{ref} mounts {writable} writable"
    # The SQLite-era state volume: gone from nlu/nlg (and the retriever/candidates, which never used it);
    # the ranker transformer reads the Feast registry from it, feedback the drift monitor's requests.
    for name in ("naviyam-nlu", "naviyam-nlg", "naviyam-retriever", "naviyam-candidates"):
        mounted = {claim for claim, _ in claims(wls[f"InferenceService/{name}/predictor"]).values()}
        assert "naviyam-state" not in mounted, name
    assert claims(wls["InferenceService/naviyam-ranker/transformer"])["/var/lib/naviyam/state"] == ("naviyam-state", True)
    assert claims(wls["Deployment/naviyam-feedback"])["/var/lib/naviyam/state"] == ("naviyam-state", True)
    # Only the batch jobs write it (the Feast registry, features.json).
    writers = sorted(ref for ref, wl in wls.items() if wl.pod is not None
                     and ("naviyam-state", False) in claims(wl).values())
    assert writers == ["CronJob/naviyam-feature-materialize", "Job/naviyam-build"]


@pytest.mark.usefixtures("kubectl")
def test_prod_keeps_state_off_the_rwx_class():
    docs = built("prod")
    rwx = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"
                 and "ReadWriteMany" in d["spec"]["accessModes"])
    assert rwx == ["naviyam-data", "naviyam-llm-weights", "naviyam-models", "naviyam-state"]
    sts = one(docs, "StatefulSet", "naviyam-postgres")
    assert [t["spec"]["accessModes"] for t in sts["spec"]["volumeClaimTemplates"]] == [["ReadWriteOnce"]]
    assert "storageClassName" not in one(docs, "PersistentVolumeClaim", "naviyam-postgres-backups")["spec"]
    # Two or more replicas of nlu and nlg: every one of them keeps its state in PostgreSQL.
    wls = by_ref(docs)
    for name in ("naviyam-nlu", "naviyam-nlg"):
        wl = wls[f"InferenceService/{name}/predictor"]
        assert wl.min_replicas >= 2 and vm.STATE_DSN_ENV in env_of(container(wl))


# -- the validator on broken copies ------------------------------------------------------------------

def assert_fails(report: vm.Report, *needles: str) -> None:
    assert not report.ok, "the validator passed a broken manifest"
    hits = [e for e in report.errors if all(n in e for n in needles)]
    assert hits, "expected an error containing " + " & ".join(map(repr, needles)) + ", got:\n" + "\n".join(report.errors)


NLG_DSN = ("          - name: NAVIYAM_STATE__DSN           # memory, events, registry pointers: PostgreSQL (manifests/README.md)\n"
           "            valueFrom:\n              secretKeyRef: {name: naviyam-postgres, key: dsn}\n")


def test_a_state_client_without_the_dsn(sandbox):
    sandbox.edit("base/isvc-nlg.yaml", NLG_DSN, "")
    report = sandbox.validate(["prod"])
    assert_fails(report, "InferenceService/naviyam-nlg/predictor", "keeps state", "has no NAVIYAM_STATE__DSN")
    # ... and the policy that admits nlg to the database now admits a pod that keeps no state.
    assert_fails(report, "NetworkPolicy", "InferenceService/naviyam-nlg/predictor can reach StatefulSet/naviyam-postgres")


def test_the_dsn_and_the_password_stay_in_the_secret(sandbox):
    # nlg: the DSN inline; nlu: composed in env from a password variable; the transformer: optional.
    sandbox.edit("base/isvc-nlg.yaml", NLG_DSN,
                 "          - name: NAVIYAM_STATE__DSN\n"
                 "            value: postgresql+psycopg://naviyam:hunter2@naviyam-postgres:5432/naviyam\n")
    sandbox.edit("base/isvc-nlu.yaml", NLG_DSN,
                 "          - name: PG_PASS\n            valueFrom:\n"
                 "              secretKeyRef: {name: naviyam-postgres, key: password}\n"
                 "          - name: NAVIYAM_STATE__DSN\n"
                 "            value: postgresql+psycopg://naviyam:$(PG_PASS)@naviyam-postgres:5432/naviyam\n")
    sandbox.edit("base/isvc-ranker.yaml", "secretKeyRef: {name: naviyam-postgres, key: dsn}",
                 "secretKeyRef: {name: naviyam-postgres, key: dsn, optional: true}", count=1)
    sandbox.edit("base/postgres.yaml", "            - name: POSTGRES_PASSWORD\n              valueFrom:\n"
                 "                secretKeyRef:\n                  name: naviyam-postgres\n                  key: password\n",
                 "            - name: POSTGRES_PASSWORD\n              value: $(NOT_A_SECRET)\n")
    sandbox.edit("base/config/naviyam.yaml", "log_level: INFO\n",
                 "log_level: INFO\nstate:\n  dsn: postgresql://naviyam:hunter2@naviyam-postgres:5432/naviyam\n")
    sandbox.edit("base/feedback.yaml", "              mountPath: /var/lib/naviyam/state\n              readOnly: true\n",
                 "              mountPath: /var/lib/naviyam/state\n")
    sandbox.edit("base/feedback.yaml", "            claimName: naviyam-state\n            readOnly: true\n",
                 "            claimName: naviyam-state\n")
    report = sandbox.validate(["local-kind"])
    assert_fails(report, "InferenceService/naviyam-nlg/predictor", "a PostgreSQL URL with a password in plain env")
    assert_fails(report, "InferenceService/naviyam-nlg/predictor", "NAVIYAM_STATE__DSN must come from secretKeyRef")
    assert_fails(report, "InferenceService/naviyam-nlu/predictor", "a PostgreSQL URL with a password in plain env")
    assert_fails(report, "InferenceService/naviyam-ranker/predictor", "NAVIYAM_STATE__DSN is optional")
    assert_fails(report, "StatefulSet/naviyam-postgres", "env POSTGRES_PASSWORD", "must come from a secretKeyRef")
    assert_fails(report, "ConfigMap/naviyam-config", "state.dsn is set")
    assert_fails(report, "Deployment/naviyam-feedback", "mounts volume naviyam-state writable")


POLICY_PEERS = ('        - podSelector:\n            matchLabels:\n              pipelines.kubeflow.org/v2_component: "true"\n')


def test_only_state_clients_and_pipelines_reach_postgres(sandbox):
    sandbox.edit("base/networkpolicies.yaml", POLICY_PEERS, "        - podSelector: {}\n")
    report = sandbox.validate(["local-kind"])
    assert_fails(report, "NetworkPolicy", "InferenceService/naviyam-retriever/predictor can reach StatefulSet/naviyam-postgres")
    assert_fails(report, "NetworkPolicy", "an unlabelled pod of the namespace can reach StatefulSet/naviyam-postgres")
    sandbox.edit("base/networkpolicies.yaml", "        - podSelector: {}\n", "")
    assert_fails(sandbox.validate(["local-kind"]),
                 "NetworkPolicy", "a Kubeflow pipeline task pod cannot reach StatefulSet/naviyam-postgres")


def test_external_postgres_component(sandbox):
    """An overlay with components/external-postgres: no database in the cluster, the clients keep the DSN."""
    overlay = sandbox.path("overlays/prod-external")
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - ../prod\ncomponents:\n  - ../../components/external-postgres\n")
    report = sandbox.validate(["prod-external"])
    assert report.ok, "\n".join(report.errors)
    docs, _ = vm.build_overlay(overlay)
    left = [vm.ref(d) for d in docs if "postgres" in d["metadata"]["name"]]
    assert left == [], left
    wls = by_ref(docs)
    assert env_of(container(wls["InferenceService/naviyam-nlg/predictor"]))[vm.STATE_DSN_ENV]["valueFrom"] == \
        {"secretKeyRef": SECRET_REF}
    assert any("secrets to create before applying: " in n and "naviyam-postgres/dsn" in n
               and "naviyam-postgres/password" not in n for n in report.notes)
