#!/usr/bin/env bash
# `make image`: build the operator image from images/operator/Dockerfile as
# localhost/gptoss-operator:<package version>, with OCI labels for the version, the source
# revision and the base, then write its SBOM. Rerunning it is cheap: the base is cached and the
# engine reuses its layers.
#
# - A Docker daemon answers: `docker build` (BuildKit) on the official Python image, pinned by
#   the digest the registry gives for its tag.
# - Otherwise (CI, machines without Docker): buildah with chroot isolation on a Debian 12 base
#   built here with mmdebstrap from the Debian mirrors (cached as a tarball) and imported as
#   $LOCAL_BASE. mmdebstrap, buildah and podman are installed with apt when missing.
#
# Environment:
#   IMAGE_BASE=official|local  which base (default: official with Docker, local without)
#   BASE=<image reference>     an explicit base, e.g. python:3.11-slim-bookworm@sha256:<digest>
#   IMAGE_REPO                 default localhost/gptoss-operator
#   IMAGE_CACHE                where the base tarball is kept (default ~/.cache/gptoss-image)
#   SBOM=0                     skip the SBOM
#   REBUILD=1                  build even when the image of this commit exists
# Writes dist/image.env (IMAGE, VERSION, REVISION, BASE, ENGINE, BUILD_SECONDS, SIZE_BYTES)
# and dist/sbom-gptoss-operator-<version>.cdx.json (CycloneDX of the image's /opt/venv).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$REPO"

OFFICIAL_BASE="python:3.11-slim-bookworm"
LOCAL_BASE="localhost/gptoss-base:bookworm-python3.11"
DEBIAN_PACKAGES="python3-minimal,python3-venv,python3-pip,python-is-python3,ca-certificates"
CYCLONEDX_BOM="cyclonedx-bom==7.5.0"
CACHE="${IMAGE_CACHE:-$HOME/.cache/gptoss-image}"
IMAGE_REPO="${IMAGE_REPO:-localhost/gptoss-operator}"

log() { echo "image: $*" >&2; }

VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
REVISION="$(git rev-parse HEAD)"
# A build from uncommitted sources must not claim to be the commit.
if [ -n "$(git status --porcelain -- pyproject.toml README.md .dockerignore operator images)" ]; then
  REVISION="$REVISION-dirty"
fi
CREATED="$(git log -1 --format=%cI)"
SOURCE="${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo unknown)}"
IMAGE="$IMAGE_REPO:$VERSION"

if [ -z "${ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=buildah; fi
fi
# Image queries: podman reads the storage buildah writes to.
if [ "$ENGINE" = docker ]; then IMAGES="docker image"; else IMAGES="podman image"; fi
if [ -z "${IMAGE_BASE:-}" ]; then
  if [ "$ENGINE" = docker ]; then IMAGE_BASE=official; else IMAGE_BASE=local; fi
fi

ensure_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v podman >/dev/null || missing+=(podman)
  if [ "$IMAGE_BASE" = local ]; then command -v mmdebstrap >/dev/null || missing+=(mmdebstrap); fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing ${missing[*]}: install them (Debian/Ubuntu: apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]} with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The Debian 12 base: a root filesystem with Python 3.11 from the Debian mirrors, cached as a
# tarball (delete it to refresh the packages) and imported once into the engine's storage.
local_base() {
  local tarball="$CACHE/debian-bookworm-python3.11.tar"
  if [ ! -f "$tarball" ]; then
    mkdir -p "$CACHE"
    log "building the Debian base with mmdebstrap (once; cached in $tarball)"
    # The name's .tar tells mmdebstrap the output format; the cache only ever sees a whole file.
    mmdebstrap --quiet --variant=apt --include="$DEBIAN_PACKAGES" bookworm "$CACHE/partial.tar"
    mv "$CACHE/partial.tar" "$tarball"
  fi
  if ! podman image exists "$LOCAL_BASE"; then
    podman import --quiet "$tarball" "$LOCAL_BASE" >/dev/null
  fi
  echo "$LOCAL_BASE"
}

# The official base, pinned by the digest the registry serves for its tag right now.
official_base() {
  if [ "$ENGINE" = docker ]; then
    docker pull --quiet "$OFFICIAL_BASE" >/dev/null
    docker image inspect --format '{{index .RepoDigests 0}}' "$OFFICIAL_BASE"
  else
    podman pull --quiet "docker.io/library/$OFFICIAL_BASE" >/dev/null
    echo "docker.io/library/$OFFICIAL_BASE@$(podman image inspect --format '{{.Digest}}' \
      "docker.io/library/$OFFICIAL_BASE")"
  fi
}

[ "$ENGINE" = buildah ] && ensure_tools
if [ -z "${BASE:-}" ]; then
  case "$IMAGE_BASE" in
    local) BASE="$(local_base)" ;;
    official) BASE="$(official_base)" ;;
    *) log "IMAGE_BASE must be official or local, not $IMAGE_BASE"; exit 2 ;;
  esac
fi

args=(
  --build-arg "BASE=$BASE" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION"
  --build-arg "SOURCE=$SOURCE" --build-arg "CREATED=$CREATED"
  -f images/operator/Dockerfile -t "$IMAGE" .
)
label() {
  $IMAGES inspect --format "{{index .Config.Labels \"org.opencontainers.image.$1\"}}" \
    "$IMAGE" 2>/dev/null
}
# Built from this very commit on this base already (CI builds with `make image`, then the e2e
# test asks again): nothing to do. Uncommitted sources always rebuild.
if [ "${REBUILD:-0}" != 1 ] && [[ "$REVISION" != *-dirty ]] && [ -f dist/image.env ] \
  && [ "$(label revision)" = "$REVISION" ] && [ "$(label base.name)" = "$BASE" ]; then
  log "$IMAGE is up to date (revision $REVISION); REBUILD=1 builds it again"
  exit 0
fi

log "building $IMAGE ($ENGINE, base $BASE)"
previous="$($IMAGES inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
start=$SECONDS
if [ "$ENGINE" = docker ]; then
  DOCKER_BUILDKIT=1 docker build --quiet "${args[@]}" >/dev/null
else
  # chroot isolation: no user namespaces or cgroups needed. The host's CA bundle goes in for
  # pip, so the build works behind a TLS-inspecting proxy too. No --layers: buildah 1.28 then
  # skips the cached wheel stage and the final stage's bind mount of it comes up empty.
  buildah bud --quiet --no-cache --force-rm --isolation chroot --pull=never \
    -v /etc/ssl/certs:/etc/ssl/certs:ro "${args[@]}" >/dev/null
fi
SIZE_BYTES="$($IMAGES inspect --format '{{.Size}}' "$IMAGE")"
BUILD_SECONDS=$((SECONDS - start))
# The image this build replaced would stay behind untagged: rebuilding must not fill the disk.
current="$($IMAGES inspect --format '{{.Id}}' "$IMAGE")"
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  $IMAGES rm "$previous" >/dev/null 2>&1 || true
fi
log "built $IMAGE in ${BUILD_SECONDS}s, $((SIZE_BYTES / 1000000)) MB"

mkdir -p dist
cat >dist/image.env <<ENV
IMAGE=$IMAGE
VERSION=$VERSION
REVISION=$REVISION
BASE=$BASE
ENGINE=$ENGINE
BUILD_SECONDS=$BUILD_SECONDS
SIZE_BYTES=$SIZE_BYTES
ENV

[ "${SBOM:-1}" = 0 ] && exit 0
# The SBOM lists what the image's virtualenv holds, read inside the image by cyclonedx-py from
# PyPI. The generator lives in a virtualenv made by the image's own Python, cached on the host
# per base and generator version and mounted read-only when it runs: never in the image.
sbom="dist/sbom-gptoss-operator-$VERSION.cdx.json"
tool="$CACHE/cyclonedx-bom-${CYCLONEDX_BOM#*==}-$(echo "$BASE" | sha256sum | cut -c1-12)"
mkdir -p "$tool"
install='[ -f /opt/sbom/.complete ] || { rm -rf /opt/sbom/venv && python -m venv /opt/sbom/venv \
  && /opt/sbom/venv/bin/pip install -q --no-cache-dir '"$CYCLONEDX_BOM"' && touch /opt/sbom/.complete; }'
# The root component (name, version, licence) comes from the pyproject.toml the image was built
# from; the components are the packages installed in /opt/venv.
generate='/opt/sbom/venv/bin/cyclonedx-py environment --output-reproducible --of JSON \
  --pyproject /opt/sbom-src/pyproject.toml --mc-type application /opt/venv'
start=$SECONDS
if [ "$ENGINE" = docker ]; then
  docker run --rm --user 0 -v "$tool:/opt/sbom" --entrypoint sh "$IMAGE" -c "$install" >&2
  docker run --rm -v "$tool:/opt/sbom:ro" -v "$REPO/pyproject.toml:/opt/sbom-src/pyproject.toml:ro" \
    --entrypoint sh "$IMAGE" -c "$generate" >"$sbom.tmp"
else
  ctr="$(buildah from --pull=never "$IMAGE")"
  trap 'buildah rm "$ctr" >/dev/null' EXIT
  buildah run --isolation chroot --user 0:0 -v /etc/ssl/certs:/etc/ssl/certs:ro -v "$tool:/opt/sbom" \
    "$ctr" -- sh -c "$install" >&2
  buildah run --isolation chroot --user 65532:65532 -v "$tool:/opt/sbom:ro" \
    -v "$REPO/pyproject.toml:/opt/sbom-src/pyproject.toml:ro" \
    "$ctr" -- sh -c "$generate" >"$sbom.tmp"
fi
mv "$sbom.tmp" "$sbom"
log "wrote $sbom in $((SECONDS - start))s"
