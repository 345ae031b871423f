"""Compile every pipeline to Kubeflow Pipelines IR YAML.

    python -m pipelines.compile [--out var/pipelines]     # -> retrain.yaml, canary.yaml, drift.yaml

The component image baked into the YAML is ``NAVIYAM_COMPONENT_IMAGE`` (set it before compiling);
each file also carries the Kubernetes platform spec of ``pipelines.cluster`` (a second YAML
document: the volumes, the LoRA task's GPU node), which ``read_ir`` returns beside the pipeline.
"""
import argparse
from pathlib import Path

import yaml
from kfp import compiler

from pipelines.canary import canary_pipeline
from pipelines.drift_monitor import drift_monitor_pipeline
from pipelines.retrain import retrain_pipeline

DEFAULT_OUT = Path("var") / "pipelines"


def pipeline_funcs() -> dict:
    return {"retrain": retrain_pipeline, "canary": canary_pipeline, "drift": drift_monitor_pipeline}


def compile_all(out_dir: str | Path = DEFAULT_OUT) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, func in pipeline_funcs().items():
        path = out_dir / f"{name}.yaml"
        compiler.Compiler().compile(func, str(path))
        written[name] = path
    return written


def read_ir(path: str | Path) -> tuple[dict, dict]:
    """The pipeline spec and the platform spec (kfp-kubernetes: volumes, node selectors...): the
    compiler writes the second as another YAML document of the same file."""
    docs = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d]
    return docs[0], next((d for d in docs[1:] if "platforms" in d), {})


def kubernetes_executors(platform: dict) -> dict:
    """executor label -> its Kubernetes config (pvcMount, nodeSelector, tolerations...)."""
    return (((platform.get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec") or {}).get(
        "executors") or {}


def check_ir(path: str | Path) -> dict:
    """Minimal structural check of an IR YAML: the pipeline spec, its deployment spec, and a
    platform spec that names only executors the pipeline has."""
    doc, platform = read_ir(path)
    for key in ("pipelineInfo", "root", "components", "deploymentSpec", "schemaVersion", "sdkVersion"):
        if key not in doc:
            raise ValueError(f"{path}: no {key!r} in the IR")
    executors = doc["deploymentSpec"]["executors"]
    missing = [c for c, spec in doc["components"].items() if "executorLabel" in spec and spec["executorLabel"] not in executors]
    if missing:
        raise ValueError(f"{path}: components without an executor: {missing}")
    unknown = sorted(set(kubernetes_executors(platform)) - set(executors))
    if unknown:
        raise ValueError(f"{path}: Kubernetes config for unknown executors: {unknown}")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipelines.compile", description="compile the pipelines to IR YAML")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    for name, path in compile_all(args.out).items():
        check_ir(path)
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
