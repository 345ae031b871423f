# syntax=docker/dockerfile:1
# naviyam-ranker-transformer: step 6 transformer: fan-out, Feast online features, calls the ONNX predictor.
# Build from the repository root with tools/build_images.sh (a clean build context), or
#   docker build -f dockerfiles/naviyam-ranker-transformer.Dockerfile -t naviyam-ranker-transformer:dev .
# The base is pinned by tag; pin its digest at release time:
#   --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest>
# GPU variant (prod nlu/nlg): --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/<cuda tag>
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# -- build: a virtualenv with the locked dependencies and the naviyam package ---------------------
FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, pinned, from the PyTorch index (CPU by default): installed unpinned from PyPI it
# would be the multi-GB CUDA build.
RUN pip install --index-url ${TORCH_INDEX_URL} torch==2.13.0
COPY requirements.lock /src/requirements.lock
RUN pip install -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY naviyam /src/naviyam
RUN pip install --no-deps /src

# -- runtime: the virtualenv only, as an unprivileged user --------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 naviyam \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/tmp --no-create-home --shell /usr/sbin/nologin naviyam
COPY --from=build /opt/venv /opt/venv
COPY feature_repo /app/feature_repo
# The deployment shells are not installed (only naviyam is): they run from /app, as
# `python -m components.server` etc. run from a checkout's root.
COPY components /app/components
COPY inference_graph /app/inference_graph
COPY pipelines /app/pipelines
# The root filesystem is read-only on the cluster: temporary files and caches go to /var/tmp, an
# emptyDir there (not /tmp: Knative refuses a volume mounted at /tmp).
# Settings (home, ports, URLs) come from NAVIYAM_CONFIG, mounted from the naviyam-config ConfigMap.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/var/tmp \
    HOME=/var/tmp \
    XDG_CACHE_HOME=/var/tmp/.cache \
    HF_HOME=/var/tmp/hf \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    OMP_NUM_THREADS=2 \
    NAVIYAM_FEATURE_REPO=/app/feature_repo \
    PYTHONPATH=/app
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "components.server"]
CMD ["--component", "naviyam-ranker-transformer", "--model_name", "naviyam-ranker", "--http_port", "8080"]
