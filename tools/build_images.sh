#!/usr/bin/env bash
# Build every image of dockerfiles/ (one per component, plus naviyam-jobs) — `make images`.
#
#   tools/build_images.sh                      build all as <name>:dev with docker or podman
#   tools/build_images.sh --tag 0.1.0 --registry registry.example.com/naviyam [--push]
#   tools/build_images.sh --gpu https://download.pytorch.org/whl/<cuda tag>   also build <name>:<tag>-gpu
#                                              of naviyam-nlu and naviyam-nlg with that torch index
#   tools/build_images.sh --list               print the image names and exit
#   tools/build_images.sh --dry-run            print the build commands, run nothing
#
# The build context is a clean copy of what the images need (pyproject.toml, README.md,
# requirements.lock, naviyam/, components/, feature_repo/), never the whole checkout (.venv, var/).
# Engine: $CONTAINER_ENGINE (docker | podman | none), else the first of docker, podman whose daemon
# answers. Without one it says so and exits 0 (nothing built; --require-engine makes that exit 3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKER_DIR="$ROOT/dockerfiles"
TAG="dev"
REGISTRY=""
PUSH=0
DRY_RUN=0
REQUIRE_ENGINE=0
GPU_INDEX=""
GPU_IMAGES=(naviyam-nlu naviyam-nlg)

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

images() {
  local f
  for f in "$DOCKER_DIR"/*.Dockerfile; do
    basename "$f" .Dockerfile
  done
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) TAG="$2"; shift 2 ;;
    --registry) REGISTRY="${2%/}"; shift 2 ;;
    --push) PUSH=1; shift ;;
    --gpu) GPU_INDEX="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --require-engine) REQUIRE_ENGINE=1; shift ;;
    --list) images; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build_images.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

engine_answers() {
  command -v "$1" >/dev/null 2>&1 && "$1" info >/dev/null 2>&1
}

ENGINE="${CONTAINER_ENGINE:-}"
if [[ -z "$ENGINE" ]]; then
  for candidate in docker podman; do
    if engine_answers "$candidate"; then ENGINE="$candidate"; break; fi
  done
fi
if [[ "$DRY_RUN" == 1 && ( -z "$ENGINE" || "$ENGINE" == none ) ]]; then
  ENGINE=docker   # a dry run only prints the commands
fi

if [[ -z "$ENGINE" || "$ENGINE" == none ]]; then
  why=""
  for candidate in docker podman; do
    if command -v "$candidate" >/dev/null 2>&1; then
      why+=" $candidate: CLI found, but \`$candidate info\` cannot reach an engine;"
    else
      why+=" $candidate: not installed;"
    fi
  done
  [[ "${CONTAINER_ENGINE:-}" == none ]] && why=" CONTAINER_ENGINE=none;"
  msg="NO CONTAINER ENGINE: nothing was built.${why%;}. Images are validated offline by \`python -m tools.validate_manifests\`; build them where docker or podman runs."
  echo "$msg"
  echo "$msg" >&2
  if [[ "$REQUIRE_ENGINE" == 1 ]]; then exit 3; fi
  exit 0
fi
if ! [[ "$ENGINE" == docker || "$ENGINE" == podman ]]; then
  echo "build_images.sh: CONTAINER_ENGINE must be docker, podman or none (got $ENGINE)" >&2
  exit 2
fi

run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [[ "$DRY_RUN" == 0 ]]; then "$@"; fi
}

CONTEXT="$(mktemp -d "${TMPDIR:-/tmp}/naviyam-image-context.XXXXXX")"
trap 'rm -rf "$CONTEXT"' EXIT
(cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.pyc' -cf - \
  pyproject.toml README.md requirements.lock naviyam components inference_graph pipelines feature_repo) | tar -xf - -C "$CONTEXT"

ref() { echo "${REGISTRY:+$REGISTRY/}$1:$2"; }

built=()
for name in $(images); do
  run "$ENGINE" build -f "$DOCKER_DIR/$name.Dockerfile" -t "$(ref "$name" "$TAG")" "$CONTEXT"
  built+=("$(ref "$name" "$TAG")")
  if [[ -n "$GPU_INDEX" && " ${GPU_IMAGES[*]} " == *" $name "* ]]; then
    run "$ENGINE" build -f "$DOCKER_DIR/$name.Dockerfile" --build-arg "TORCH_INDEX_URL=$GPU_INDEX" \
      -t "$(ref "$name" "$TAG-gpu")" "$CONTEXT"
    built+=("$(ref "$name" "$TAG-gpu")")
  fi
done
if [[ "$PUSH" == 1 ]]; then
  for image in "${built[@]}"; do run "$ENGINE" push "$image"; done
fi
if [[ "$DRY_RUN" == 1 ]]; then
  echo "dry run: would build ${#built[@]} image(s) with $ENGINE: ${built[*]}"
else
  echo "built ${#built[@]} image(s) with $ENGINE: ${built[*]}"
fi
exit 0
