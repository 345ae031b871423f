"""State on a cluster: the PostgreSQL DSN from its Secret for every process that keeps state, no
passwords in plain env or the ConfigMap, no serving pod writing a shared volume.
"""
from __future__ import annotations

import re

from tools.manifests.config import CONFIG_KEY, CONFIG_MAP
from tools.manifests.context import Context, Workload, containers, effective_argv, image_basename, workloads

# State on a cluster: PostgreSQL (manifests/base/postgres.yaml). Every process that keeps state gets
# the DSN (Settings.state.dsn) from Secret naviyam-postgres, key dsn; without it it would fall back to
# SQLite files, which replicas on a shared volume corrupt.
STATE_DSN_ENV = "NAVIYAM_STATE__DSN"
STATE_SECRET = "naviyam-postgres"   # keys: dsn (the clients), password (the server, the backup job)
STATE_DSN_KEY = "dsn"
# What keeps state (memory, the event log, the registry's pointers, the loop state). The retriever,
# the candidates and the Feast materialisation code read only the home volumes: no DSN for them.
STATE_COMPONENTS = {"naviyam-nlu", "naviyam-nlg", "naviyam-ranker-transformer", "naviyam-ranker-predictor",
                    "naviyam-feedback"}
STATE_MODULES = {"naviyam.cli"}  # `naviyam build` registers models and trains on the event log
POSTGRES_PASSWORD_ENV = {"POSTGRES_PASSWORD", "PGPASSWORD"}
DSN_WITH_PASSWORD = re.compile(r"postgres(?:ql)?(?:\+\w+)?://[^/\s:@]+:[^@\s]+@", re.IGNORECASE)


def holds_state_secret(wl: Workload) -> bool:
    """A pod with NAVIYAM_STATE__DSN or any key of the state Secret (the backup job's PGPASSWORD)."""
    for _, c in containers(wl.pod or {}):
        for e in c.get("env") or []:
            key_ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            if e.get("name") == STATE_DSN_ENV or key_ref.get("name") == STATE_SECRET:
                return True
    return False


def check_state(ctx: Context, runs: dict[str, list[tuple[Workload, str]]]) -> None:
    stateful = {(wl.ref, where) for component, found in runs.items() if component in STATE_COMPONENTS
                for wl, where in found}
    state_settings = (ctx.settings or {}).get("state")
    if isinstance(state_settings, dict) and state_settings.get("dsn"):
        ctx.error(f"ConfigMap/{CONFIG_MAP}", f"state.dsn is set in {CONFIG_KEY}: the DSN carries the password; it "
                                             f"comes from Secret {STATE_SECRET} (key {STATE_DSN_KEY}) as {STATE_DSN_ENV}")
    for wl in workloads(ctx.docs):
        pod = wl.pod or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for where, c in containers(pod):
            loc = f"{wl.ref} {where} ({c.get('name')})"
            base = image_basename(c.get("image", ""))
            naviyam = base.startswith("naviyam-")
            env = c.get("env") or []
            for e in env:
                name, key_ref = e.get("name", ""), (e.get("valueFrom") or {}).get("secretKeyRef")
                if "value" in e and DSN_WITH_PASSWORD.search(str(e.get("value") or "")):
                    ctx.error(loc, f"env {name}: a PostgreSQL URL with a password in plain env; put the DSN in "
                                   f"Secret {STATE_SECRET} (key {STATE_DSN_KEY}) and reference it")
                if name in POSTGRES_PASSWORD_ENV and not key_ref:
                    ctx.error(loc, f"env {name}: the PostgreSQL password must come from a secretKeyRef "
                                   f"(Secret {STATE_SECRET}, key password), never a value")
            dsn = next((e for e in env if e.get("name") == STATE_DSN_ENV), None)
            if dsn is not None:
                key_ref = (dsn.get("valueFrom") or {}).get("secretKeyRef")
                if not key_ref:
                    ctx.error(loc, f"{STATE_DSN_ENV} must come from secretKeyRef {STATE_SECRET}/{STATE_DSN_KEY}: "
                                   "the DSN carries the password, and no pod composes it in env")
                elif (key_ref.get("name"), key_ref.get("key")) != (STATE_SECRET, STATE_DSN_KEY):
                    ctx.error(loc, f"{STATE_DSN_ENV} comes from {key_ref.get('name')}/{key_ref.get('key')}; "
                                   f"every state client reads {STATE_SECRET}/{STATE_DSN_KEY}")
                elif key_ref.get("optional"):
                    ctx.error(loc, f"{STATE_DSN_ENV} is optional: without the Secret the process would fall back "
                                   "to SQLite files in the pod; make it required")
            argv = effective_argv(c, ctx.repo.dockerfiles.get(base)) if naviyam else None
            module = argv[2] if argv and len(argv) > 2 and argv[1] == "-m" else None
            if ((wl.ref, where) in stateful or module in STATE_MODULES) and dsn is None:
                ctx.error(loc, f"keeps state (memory, events, registry pointers) but has no {STATE_DSN_ENV}: it "
                               "would write SQLite files, which several replicas on a shared volume corrupt")
            if naviyam and wl.long_running:
                for m in c.get("volumeMounts") or []:
                    claim = (volumes.get(m.get("name")) or {}).get("persistentVolumeClaim")
                    if claim and not (m.get("readOnly") or claim.get("readOnly")):
                        ctx.error(loc, f"mounts volume {claim.get('claimName')} writable: serving pods write no "
                                       "shared volume (state is in PostgreSQL; the jobs write the home volumes)")
