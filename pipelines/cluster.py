"""Where the learning loop's tasks run on a Kubeflow Pipelines cluster (kfp-kubernetes), in one place.

Every pipeline calls ``configure()`` last in its ``@dsl.pipeline`` body; it wires each task of
the pipeline being defined, so no pipeline file repeats a claim name or a GPU label:

- A task that takes ``home`` reads and writes the live Settings home, which on a cluster is the
  three claims of ``manifests/base/storage.yaml``, mounted whole where the batch image's Settings
  put them (``home: /var/lib/naviyam`` in ``manifests/base/config/naviyam.yaml``): without them a
  task starts on an empty filesystem. It also gets that Settings file (the ``naviyam-config``
  ConfigMap at ``/etc/naviyam``), the state database's DSN from the ``naviyam-postgres`` Secret
  (``NAVIYAM_STATE__DSN``: memory, the event log, registry pointers, loop state), runs as the uid that owns those volumes (the jobs' 10001), and
  is never cached: what it reads (new feedback, the registry's production, the serving log, the
  loop state) changes between runs with the same parameters, and most of these tasks also write
  there. Tasks without ``home`` (the ONNX re-export, notes) are pure functions of their inputs
  and keep KFP's cache.
- LoRA asks for a GPU node: one ``nvidia.com/gpu``, the GPU nodes' label and taint of the prod
  overlay (``manifests/overlays/prod/patches/gpu-llm.yaml``), the memory of the GPU model servers.

The claims are namespaced: runs must execute in the namespace that holds them (``naviyam``).
Two compile-time switches, like ``NAVIYAM_COMPONENT_IMAGE``: ``NAVIYAM_LORA_GPUS=0`` compiles
LoRA for a CPU node (a cluster without GPUs, such as local-kind); ``NAVIYAM_LLM_WEIGHTS_PVC``
(prod: ``naviyam-llm-weights``) also mounts the base model's weights claim on the LoRA task, at
``/var/lib/naviyam/llm`` as in the nlu/nlg servers (point ``llm.base_path`` there).

kfp.local ignores the Kubernetes platform config and warns that the LoRA task's resources have no
effect there, so the same pipeline functions run locally and compile for a cluster.
"""
from __future__ import annotations

import os
from pathlib import PurePosixPath

from kfp import kubernetes
from kfp.dsl import PipelineTask, pipeline_context

from pipelines.components import train_lora_adapter

HOME = "/var/lib/naviyam"
CONFIG_DIR = "/etc/naviyam"
CONFIG = f"{CONFIG_DIR}/config.yaml"
CONFIG_MAP = "naviyam-config"
# The state database (naviyam.storage): the DSN is read from the Secret, never from the ConfigMap.
STATE_SECRET = "naviyam-postgres"
STATE_ENV = {"dsn": "NAVIYAM_STATE__DSN"}
# claim -> mount path: Settings.data_dir, models_dir (models + registry), state_dir (events, loop state)
VOLUMES = {
    "naviyam-data": str(PurePosixPath(HOME) / "data"),
    "naviyam-models": str(PurePosixPath(HOME) / "models"),
    "naviyam-state": str(PurePosixPath(HOME) / "state"),
}
LLM_WEIGHTS_MOUNT = str(PurePosixPath(HOME) / "llm")
RUN_AS = 10001   # the images' USER; the jobs write the volumes as it (fsGroup 10001)

GPU_TASKS = frozenset({train_lora_adapter.name})
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
GPU_TAINT = "nvidia.com/gpu"
# Sized like the GPU model servers (gpu-llm.yaml), which load the same base model.
GPU_CPU = ("2", "4")
GPU_MEMORY = ("12Gi", "24Gi")


def reads_home(task: PipelineTask) -> bool:
    return "home" in (task.component_spec.inputs or {})


def mount_home(task: PipelineTask) -> PipelineTask:
    for claim, path in VOLUMES.items():
        kubernetes.mount_pvc(task, pvc_name=claim, mount_path=path)
    kubernetes.use_config_map_as_volume(task, config_map_name=CONFIG_MAP, mount_path=CONFIG_DIR)
    kubernetes.use_secret_as_env(task, secret_name=STATE_SECRET, secret_key_to_env=STATE_ENV)
    kubernetes.set_security_context(task, run_as_user=RUN_AS, run_as_group=RUN_AS, run_as_non_root=True)
    return task


def request_gpu(task: PipelineTask, gpus: int = 1, weights_claim: str = "") -> PipelineTask:
    if weights_claim:
        kubernetes.mount_pvc(task, pvc_name=weights_claim, mount_path=LLM_WEIGHTS_MOUNT)
    if gpus <= 0:
        return task
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(gpus)
    task.set_cpu_request(GPU_CPU[0]).set_cpu_limit(GPU_CPU[1])
    task.set_memory_request(GPU_MEMORY[0]).set_memory_limit(GPU_MEMORY[1])
    kubernetes.add_node_selector(task, label_key=GPU_NODE_LABEL[0], label_value=GPU_NODE_LABEL[1])
    kubernetes.add_toleration(task, key=GPU_TAINT, operator="Exists", effect="NoSchedule")
    return task


def wire(task: PipelineTask) -> PipelineTask:
    if reads_home(task):
        task.set_caching_options(enable_caching=False)
        mount_home(task)
    if task.component_spec.name in GPU_TASKS:
        request_gpu(task, int(os.environ.get("NAVIYAM_LORA_GPUS", "1")),
                    os.environ.get("NAVIYAM_LLM_WEIGHTS_PVC", ""))
    return task


def configure() -> None:
    """Wires every task of the pipeline being defined (also those inside dsl.If branches)."""
    pipeline = pipeline_context.Pipeline.get_default_pipeline()
    if pipeline is None:
        raise RuntimeError("cluster.configure() belongs in a @dsl.pipeline body")
    for task in pipeline.tasks.values():
        wire(task)
