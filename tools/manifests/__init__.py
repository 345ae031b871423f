"""The offline manifest validator behind `python -m tools.validate_manifests`, split by concern.

repo       the repository facts (COMPONENTS, FANOUT, runnable modules, parsed Dockerfiles)
build      kubectl kustomize: find kubectl, build an overlay, load its YAML
context    the Context checks report into, the workloads (pods) of a build, shared helpers
schemas    strict Kubernetes schemas (kubernetes-validate) and CRD schemas (jsonschema)
structure  namespaces and names, PodDisruptionBudgets, CronJobs
images     images, container commands, component coverage, dockerfiles/*.Dockerfile
kserve     the InferenceGraph (and its generated copy), deployment mode, canary, autoscaling, Knative
config     the naviyam-config ConfigMap against naviyam/config.py Settings
state      PostgreSQL state: the DSN Secret, no passwords in env, no writable shared volumes
security   pod hardening, RBAC, Secrets
network    the NetworkPolicy simulation
report     one overlay or all of them -> a Report of errors and notes
cli        the command line (flags, --help text, printed output)

tools/validate_manifests.py is the entry point and re-exports these modules' names.
"""
