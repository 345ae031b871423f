"""Offline validation of manifests/ (no API server, no container engine): `python -m tools.validate_manifests`.

The entry point only: the validator lives in tools/manifests/, one module per concern (its __init__
lists them; cli.py has the full description and --help text). The names below are re-exported so
that `from tools import validate_manifests as vm` (tests/manifests) and
`from tools.validate_manifests import strict_schema` keep working unchanged.
"""
from __future__ import annotations

from tools.manifests.build import BuildError, build_overlay, find_kubectl  # noqa: F401
from tools.manifests.cli import CHECKS, main  # noqa: F401
from tools.manifests.config import CONFIG_KEY, CONFIG_MAP, NON_SETTINGS_ENV, check_config  # noqa: F401
from tools.manifests.context import (WORKLOAD_KINDS, Context, Workload, arg_value, containers,  # noqa: F401
                                     effective_argv, image_basename, image_name, match_selector, ref, workloads)
from tools.manifests.images import (DEV_ONLY_MODULES, FEEDBACK_MODULE, KSERVE_SERVER_FLAGS,  # noqa: F401
                                    MODEL_SERVER_PORT, SERVER_FLAGS, SERVER_MODULE, THIRD_PARTY_IMAGES,
                                    check_command, check_coverage, check_dockerfiles, check_feedback,
                                    check_images_and_commands, check_model_server, check_model_server_container,
                                    check_python_code)
from tools.manifests.kserve import (AUTOSCALER_CLASS_ANNOTATION, CANARY_SERVICES,  # noqa: F401
                                    DEPLOYMENT_MODE_ANNOTATION, GRAPH_COPY, GRAPH_HEADER, KNATIVE_CLASS_ANNOTATION,
                                    KNATIVE_CONTAINER_SECURITY, KNATIVE_RESERVED_ENV, KNATIVE_RESERVED_PATHS,
                                    KNATIVE_RESERVED_PORTS, MODES, check_graph, check_graph_copy, check_knative,
                                    check_mode_canary_autoscaling, graph_copy_text)
from tools.manifests.network import APP_NAMESPACE, KFP_POD_LABELS, Peer, allowed, check_network  # noqa: F401
from tools.manifests.repo import REPO_ROOT, Dockerfile, Repo, parse_dockerfile  # noqa: F401
from tools.manifests.report import Report, validate, validate_overlay  # noqa: F401
from tools.manifests.schemas import (K8S_VERSION, api_group, check_schemas, load_crd_validators,  # noqa: F401
                                     strict_schema, validate_builtin, validate_crd)
from tools.manifests.security import check_rbac, check_secrets, check_security, effective  # noqa: F401
from tools.manifests.state import (DSN_WITH_PASSWORD, POSTGRES_PASSWORD_ENV, STATE_COMPONENTS,  # noqa: F401
                                   STATE_DSN_ENV, STATE_DSN_KEY, STATE_MODULES, STATE_SECRET, check_state,
                                   holds_state_secret)
from tools.manifests.structure import (CLUSTER_SCOPED, DNS1035, KSERVE_KINDS, check_jobs, check_pdbs,  # noqa: F401
                                       check_structure)

if __name__ == "__main__":
    raise SystemExit(main())
