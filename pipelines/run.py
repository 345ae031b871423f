"""Run the pipelines locally (kfp.local) or on a Kubeflow Pipelines host.

    python -m pipelines.run retrain --local [--home DIR] [--config FILE] [-p key=value ...]
    python -m pipelines.run canary  --local [--home DIR] [-p simulate_requests=1500]
    python -m pipelines.run drift   --local [--home DIR] [--no-follow]
    python -m pipelines.run submit retrain --host URL [-p key=value ...] [--schedule "0 0 3 * * *"]

Locally every component runs as a subprocess of this virtual environment
(``SubprocessRunner(use_venv=False)``: offline, no container engine); artifacts go under
``<home>/pipelines/runs`` (or ``--pipeline-root``). After a local ``drift`` run that asked for a
retrain, the retrain pipeline runs right away (``--no-follow`` leaves the request recorded).

``submit`` uses ``kfp.Client(host)``; ``--schedule`` (KFP's 6-field cron, seconds first) creates a
recurring run instead, e.g. the drift monitor every hour (``home`` and ``config`` default to the
cluster's mounts, ``pipelines.cluster``)::

    python -m pipelines.run submit drift --host http://ml-pipeline-ui.kubeflow --schedule "0 0 * * * *"
"""
import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kfp import local

from naviyam.config import Settings
from pipelines import PIPELINES, steps
from pipelines.compile import pipeline_funcs
from pipelines.submit import EXPERIMENT, submit
from pipelines.summary import render, summarise

log = logging.getLogger(__name__)
NAMES = PIPELINES


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"parameter {pair!r} is not key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _home(home: str | None) -> Path:
    return Path(home).resolve() if home else Settings.load().home.resolve()


def run_local(name: str, *, home: str | Path | None = None, config: str | Path | None = None,
              pipeline_root: str | Path | None = None, follow: bool = True, **params: Any) -> dict:
    """Runs one pipeline with kfp.local; returns {name, seconds, run_dir, followed?}."""
    if name not in NAMES:
        raise ValueError(f"pipeline must be one of {NAMES}")
    home_dir = _home(str(home) if home else None)
    root = Path(pipeline_root).resolve() if pipeline_root else home_dir / "pipelines" / "runs"
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    func = pipeline_funcs()[name]
    before = set(root.iterdir())
    started = time.perf_counter()
    func(home=str(home_dir), config=str(Path(config).resolve()) if config else "", **params)
    seconds = round(time.perf_counter() - started, 2)
    new = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    result: dict[str, Any] = {"name": name, "seconds": seconds, "run_dir": str(new[-1]) if new else None,
                              "home": str(home_dir)}
    if result["run_dir"]:
        result["summary"] = summarise(name, result["run_dir"])
        result["decision"] = result["summary"].get("decision")
    log.info("local %s run finished in %.1fs (%s)", name, seconds, result["run_dir"])
    if name == "drift" and follow:
        settings = steps.load_settings(str(home_dir), str(config or ""))
        if steps.pending_retrain_requests(settings):
            steps.mark_retrain_requests(settings, "running")
            try:
                result["followed"] = run_local("retrain", home=home_dir, config=config, pipeline_root=pipeline_root)
            except BaseException:
                steps.mark_retrain_requests(settings, "requested", current="running")  # ask again next time
                raise
            steps.mark_retrain_requests(settings, "done", current="running")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipelines.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=[*NAMES, "submit"])
    parser.add_argument("pipeline", nargs="?", choices=NAMES, help="with submit: which pipeline")
    parser.add_argument("--local", action="store_true", help="run here with kfp.local (the default)")
    parser.add_argument("--home", help="Settings home (data, models, registry, event store)")
    parser.add_argument("--config", help="Settings YAML")
    parser.add_argument("--pipeline-root", help="where local runs write artifacts")
    parser.add_argument("-p", "--param", action="append", default=[], help="pipeline parameter key=value")
    parser.add_argument("--no-follow", action="store_true", help="drift: don't run the requested retrain")
    parser.add_argument("--host", help="KFP API host (submit)")
    parser.add_argument("--schedule", help="submit: cron (6 fields) for a recurring run")
    parser.add_argument("--namespace", help="submit: the KFP namespace the runs execute in; it must hold the "
                                            "naviyam-data/-models/-state claims (default kubeflow)")
    parser.add_argument("--experiment", default=EXPERIMENT)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of the summary")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    params = _parse_params(args.param)
    if args.what == "submit":
        if not args.pipeline or not args.host:
            parser.error("submit needs a pipeline name and --host")
        out = submit(args.pipeline, host=args.host, params=params, experiment=args.experiment, schedule=args.schedule,
                     namespace=args.namespace)
    else:
        out = run_local(args.what, home=args.home, config=args.config, pipeline_root=args.pipeline_root,
                        follow=not args.no_follow, **params)
        if not args.json and out.get("summary"):
            followed = (out.get("followed") or {}).get("summary")
            print(render(out["summary"], followed))
            print(f"   ({out['seconds']:.0f} s; the KFP log above has every task's output)")
            return 0
    json.dump(out, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
