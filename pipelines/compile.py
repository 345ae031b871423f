"""Compile every pipeline to Kubeflow Pipelines IR YAML.

    python -m pipelines.compile [--out var/pipelines]     # -> retrain.yaml, canary.yaml, drift.yaml

The component image baked into the YAML is ``NAVIYAM_COMPONENT_IMAGE`` (set it before compiling).
"""
import argparse
from pathlib import Path

import yaml
from kfp import compiler

DEFAULT_OUT = Path("var") / "pipelines"


def pipeline_funcs() -> dict:
    from pipelines.canary import canary_pipeline
    from pipelines.drift_monitor import drift_monitor_pipeline
    from pipelines.retrain import retrain_pipeline

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


def check_ir(path: str | Path) -> dict:
    """Minimal structural check of an IR YAML: the pipeline spec and its deployment spec."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for key in ("pipelineInfo", "root", "components", "deploymentSpec", "schemaVersion", "sdkVersion"):
        if key not in doc:
            raise ValueError(f"{path}: no {key!r} in the IR")
    executors = doc["deploymentSpec"]["executors"]
    missing = [c for c, spec in doc["components"].items() if "executorLabel" in spec and spec["executorLabel"] not in executors]
    if missing:
        raise ValueError(f"{path}: components without an executor: {missing}")
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
