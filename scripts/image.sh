#!/usr/bin/env bash
# `npm run image`: builds the release image from ./Dockerfile on this machine and runs it against the
# local engines, without a Docker engine or a registry (docs/deploy.md, "Build and check the image locally").
#
#   1. base: a local stand-in for node:24-bookworm-slim, made once and reused: Debian bookworm from
#      Debian's packages (debootstrap --variant=minbase, slimmed as debian:bookworm-slim is), the Node
#      binary of the npm package `node` (node_modules/node, package.json pins it), npm from the npm
#      registry, and the user `node` (1000:1000). Tag localhost/node:<version>-bookworm-slim.
#   2. build: buildah bud --isolation chroot --format docker (HEALTHCHECK is Docker-format only)
#      --layers (a second run reuses npm ci's layers) --jobs 2 (the build and deps stages side by
#      side) with NODE_IMAGE=<the base>; prints the size.
#   3. run: mounts the image's filesystem and, chrooted into it as its USER, in its WORKDIR, with its
#      ENV plus the test settings of `bash scripts/engines.sh env test --group <group>` (the secrets
#      copied to /run/secrets as a Swarm would mount them): the migration entry point, then the
#      image's CMD for the groups api, base-a, base-b and base-c (/health/ready needs Bases A, B and
#      C); checks GET /health/ready (200), the image's HEALTHCHECK command, and that a person can be
#      created (201) and looked up (200) through the gateway; that no development secret is in the
#      image and its user cannot change /app/dist. Then stops everything.
#
# Needs root, buildah, debootstrap and curl (installed with apt-get when missing; `--tools` does only
# that, or says in one line what is missing when not root) and the engines (started when down).
# Everything (buildah's storage, the base, layers, logs) lives under $CREDIT_MESH_DATA/image;
# containers, mounts and processes are removed on exit, even on failure. Variables: IMAGE_TAG (localhost/credit-mesh:test), DEBIAN_MIRROR, NPM_VERSION (11),
# IMAGE_REBUILD_BASE=1 (make the base again).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DATA=${CREDIT_MESH_DATA:-$ROOT/.data}
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
WORK=$DATA/image
IMAGE=${IMAGE_TAG:-localhost/credit-mesh:test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NPM_VERSION=${NPM_VERSION:-11}
# Bump when the recipe of the base changes: a base made by an older recipe is made again.
BASE_RECIPE=1
GROUPS_RUN="base-a base-b base-c api"
WAIT_READY_SECS=${IMAGE_READY_SECS:-120}

say() { printf 'image: %s\n' "$*"; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$(( SECONDS - $1 )) s"; }

# The tools: buildah, debootstrap, curl. As root, Debian's packages are installed when missing;
# otherwise one line says what to run. `scripts/image.sh --tools` does only this (npm test runs it
# before anything else, as it does scripts/chromium.sh).
ensure_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  [[ $(id -u) -eq 0 ]] || die "needs root for buildah --isolation chroot, debootstrap and mount (npm run image, and npm test, which runs it): run it with sudo${missing[*]:+; missing: ${missing[*]}}"
  (( ${#missing[@]} )) || return 0
  say "installing Debian's ${missing[*]} (npm run image builds and runs the image with them)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  for t in "${missing[@]}"; do command -v "$t" >/dev/null || die "apt-get installed $t but it is not on PATH"; done
}
ensure_tools
[[ ${1:-} == --tools ]] && exit 0
(( $# == 0 )) || die "usage: bash scripts/image.sh [--tools]"

NODE_BIN=$ROOT/node_modules/node/bin/node
[[ -x $NODE_BIN ]] || die "$NODE_BIN is missing: run npm ci (the npm package \`node\` brings the Node binary)"
NODE_VERSION=$("$NODE_BIN" --version); NODE_VERSION=${NODE_VERSION#v}
BASE=localhost/node:$NODE_VERSION-bookworm-slim
BASE_ALIAS=localhost/node:${NODE_VERSION%%.*}-bookworm-slim

mkdir -p "$WORK/cache" "$WORK/logs"
# One run at a time per data directory (they share buildah's storage and the gateway's logs).
exec 9>"$WORK/lock"
flock -w 1800 9 || die "another npm run image holds $WORK/lock"
B=(buildah --root "$WORK/storage" --runroot "$WORK/run" --storage-driver overlay)

# ---- clean-up, whatever happens -------------------------------------------------------------
CONTAINERS=() MOUNTS=() PIDS=() TMPDIRS=()
cleanup() {
  local rc=$? p m i c
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 50); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.2
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do
    m=${MOUNTS[i]}
    mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" || true; }
  done
  for c in "${CONTAINERS[@]}"; do
    "${B[@]}" umount "$c" >/dev/null 2>&1 || true
    "${B[@]}" rm "$c" >/dev/null 2>&1 || true
  done
  for i in "${TMPDIRS[@]}"; do rm -rf "$i"; done
  # containers/storage keeps its overlay directory bind-mounted (private) while it has mounts.
  if [[ -z $("${B[@]}" containers --quiet 2>/dev/null) ]] && mountpoint -q "$WORK/storage/overlay"; then
    umount "$WORK/storage/overlay" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

new_container() { # image: sets $c to a new working container of it (removed on exit)
  c=$("${B[@]}" from --pull=never --quiet "$1")
  CONTAINERS+=("$c")
}

# ---- 1. the base image ----------------------------------------------------------------------
make_base() {
  local t0=$SECONDS m npm_tgz
  say "making $BASE: Debian bookworm (debootstrap minbase from $MIRROR) + Node $NODE_VERSION + npm $NPM_VERSION"
  npm_tgz=$(find "$WORK/cache" -maxdepth 1 -name "npm-$NPM_VERSION*.tgz" | sort -V | tail -n 1)
  if [[ -z $npm_tgz ]]; then
    (cd "$WORK/cache" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    npm_tgz=$(find "$WORK/cache" -maxdepth 1 -name "npm-$NPM_VERSION*.tgz" | sort -V | tail -n 1)
  fi
  new_container scratch
  m=$("${B[@]}" mount "$c")
  debootstrap --variant=minbase bookworm "$m" "$MIRROR" >"$WORK/logs/debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $WORK/logs/debootstrap.log"
  # Slim, as debian:bookworm-slim: no documentation but the licences, no manual pages, no
  # translations, no apt lists or downloaded packages; dpkg keeps them out of later installs too.
  cat >"$m/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$m/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$m/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$m/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$m"/usr/share/man/* "$m"/usr/share/info/* "$m"/var/lib/apt/lists/* "$m"/var/cache/apt/*.bin \
    "$m"/var/cache/apt/archives/*.deb "$m"/var/log/*.log "$m"/var/log/apt/*
  # Node and npm where the official image has them.
  install -m 0755 "$NODE_BIN" "$m/usr/local/bin/node"
  mkdir -p "$m/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$m/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$m/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$m/usr/local/bin/npx"
  chroot "$m" groupadd --gid 1000 node
  chroot "$m" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  chroot "$m" /usr/local/bin/node -e 'process.exit(0)' || die "the base's node does not run in its own root"
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$NODE_VERSION" --cmd node --workingdir / \
    --label credit-mesh.base-recipe="$BASE_RECIPE" \
    --label org.opencontainers.image.description="local stand-in for node:${NODE_VERSION%%.*}-bookworm-slim (scripts/image.sh)" "$c"
  "${B[@]}" umount "$c" >/dev/null
  "${B[@]}" commit --quiet --rm "$c" "$BASE" >/dev/null
  CONTAINERS=("${CONTAINERS[@]/$c}")
  "${B[@]}" tag "$BASE" "$BASE_ALIAS"
  say "base $BASE made in $(elapsed "$t0")"
}

recipe=$("${B[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "credit-mesh.base-recipe"}}' "$BASE" 2>/dev/null || true)
if [[ $recipe == "$BASE_RECIPE" && -z ${IMAGE_REBUILD_BASE:-} ]]; then
  say "base $BASE present (reused)"
  "${B[@]}" tag "$BASE" "$BASE_ALIAS"
else
  make_base
fi

# ---- 2. the image, from the project's Dockerfile --------------------------------------------
t0=$SECONDS
# Behind a TLS-inspecting proxy the host's npm trusts an extra CA (its `cafile`): the build's npm ci
# gets the same file through a mount that exists during RUN steps only (nothing of it is committed
# to the runtime stage), and an npmrc where npm looks for its global config (<prefix>/etc/npmrc).
bud_mounts=()
ca=$(npm config get cafile 2>/dev/null || true)
[[ -f $ca ]] || ca=${NODE_EXTRA_CA_CERTS:-}
if [[ -n $ca && -f $ca ]]; then
  printf 'cafile=/usr/local/etc/build-ca.pem\n' >"$WORK/cache/build-npmrc"
  bud_mounts=(--volume "$ca:/usr/local/etc/build-ca.pem:ro" --volume "$WORK/cache/build-npmrc:/usr/local/etc/npmrc:ro")
  say "the build's npm trusts $ca as the host's npm does (mounted during RUN steps only)"
fi
say "building $IMAGE from Dockerfile (NODE_IMAGE=$BASE; log $WORK/logs/build.log)"
if ! timeout 1200 "${B[@]}" bud --isolation chroot --format docker --layers --jobs 2 --force-rm --pull=never "${bud_mounts[@]}" \
    --build-arg NODE_IMAGE="$BASE" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$WORK/logs/build.log" 2>&1; then
  tail -n 30 "$WORK/logs/build.log" >&2
  die "build failed, see $WORK/logs/build.log"
fi
size=$("${B[@]}" images --noheading --format '{{.Size}}' "$IMAGE" | head -n 1)
say "built $IMAGE in $(elapsed "$t0")"
say "size $IMAGE $size"

# ---- 3. run the image's code against the local engines --------------------------------------
bash "$ROOT/scripts/engines.sh" up >"$WORK/logs/engines.log" 2>&1 || die "the engines did not start, see $WORK/logs/engines.log"
cfg=$("${B[@]}" inspect --type image "$IMAGE")
field() { # JSON field of the image config, as shell words (arrays) or a string
  "$NODE_BIN" -e 'const c=JSON.parse(process.argv[1]).Docker.config;const v=c[process.argv[2]];
    if(Array.isArray(v))for(const x of v)process.stdout.write(x+"\0");else if(v!=null)process.stdout.write(String(v))' "$cfg" "$1"
}
IMG_USER=$(field User); IMG_WORKDIR=$(field WorkingDir)
mapfile -d '' IMG_ENV < <(field Env)
mapfile -d '' IMG_CMD < <(field Cmd)
mapfile -d '' IMG_HEALTH < <("$NODE_BIN" -e 'const h=JSON.parse(process.argv[1]).Docker.config.Healthcheck;
  if(h&&h.Test&&h.Test[0]==="CMD")for(const x of h.Test.slice(1))process.stdout.write(x+"\0")' "$cfg")
[[ -n $IMG_USER && -n $IMG_WORKDIR && ${#IMG_CMD[@]} -gt 0 ]] || die "the image has no USER, WORKDIR or CMD"
(( ${#IMG_HEALTH[@]} )) || die "the image has no HEALTHCHECK"

new_container "$IMAGE"
m=$("${B[@]}" mount "$c")
uid=$(awk -F: -v u="$IMG_USER" '$1==u{print $3":"$4}' "$m/etc/passwd")
[[ -n $uid ]] || uid=$IMG_USER
# /proc and /dev as a container has them; the secrets as Swarm mounts them (root-owned, readable).
for d in proc dev run/secrets; do mkdir -p "$m/$d"; done
mount -t proc proc "$m/proc"; MOUNTS+=("$m/proc")
mount --bind /dev "$m/dev"; MOUNTS+=("$m/dev")
secrets=$(mktemp -d "$WORK/secrets.XXXXXX"); TMPDIRS+=("$secrets")
cp "$DATA"/secrets/* "$secrets/"
chown -R "0:${uid#*:}" "$secrets"; chmod 0750 "$secrets"; chmod 0440 "$secrets"/*
mount --bind "$secrets" "$m/run/secrets"; MOUNTS+=("$m/run/secrets")
mount -o remount,bind,ro "$m/run/secrets"

# What the image holds: nothing of .data (the development secrets), and an /app its user cannot change.
[[ ! -e $m$IMG_WORKDIR/.data ]] || die "the image holds .data (see .dockerignore)"
for f in admin_api_key pii_keys blind_index_key pseudonym_key; do
  ! grep -rqsF -- "$(cat "$DATA/secrets/$f")" "$m$IMG_WORKDIR" || die "the image holds the development secret $f"
done
! chroot --userspec="$uid" "$m" /usr/bin/test -w "$IMG_WORKDIR/dist" || die "$IMG_WORKDIR/dist is writable by $IMG_USER"
say "no development secret in $IMG_WORKDIR; $IMG_WORKDIR/dist read-only for $IMG_USER"

port=$("$NODE_BIN" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
namespace=image-$$

# The environment of one group's process: the image's ENV, then the test settings of that group with
# their files under /run/secrets, as the stack gives them.
group_env() {
  printf '%s\0' "${IMG_ENV[@]}"
  (
    settings=$(bash "$ROOT/scripts/engines.sh" env test --group "$1")
    eval "$settings"
    sed -n 's/^export \([A-Z_][A-Z0-9_]*\)=.*/\1/p' <<<"$settings" | while read -r name; do
      [[ $name == CREDIT_MESH_DATA ]] && continue
      value=${!name}
      printf '%s=%s\0' "$name" "${value//"$DATA/secrets/"//run/secrets/}"
    done
  )
  printf '%s\0' "NAMESPACE=$namespace" "NODE_ID=image-$1-$$" LOG_FORMAT=json LOG_LEVEL=warn \
    HOST=127.0.0.1 "PORT=$port" "SERVICES=$(group_services "$1")"
}
# A group's SERVICES, from the image's own config/groups.js (test/deploy checks the stack agrees).
group_services() {
  "$NODE_BIN" -e 'console.log(require(process.argv[1]).GROUPS[process.argv[2]].join(","))' \
    "$m$IMG_WORKDIR/dist/config/groups.js" "$1"
}
# RUN=(the command line that runs a command inside the image's root, as its USER, in its WORKDIR,
# with a group's environment).
in_image() { # group command...
  local group=$1 envs; shift
  mapfile -d '' envs < <(group_env "$group")
  RUN=(chroot --userspec="$uid" --groups="${uid#*:}" "$m" /usr/bin/env -i -C "$IMG_WORKDIR" "${envs[@]}" "$@")
}

t0=$SECONDS
say "migrate: node dist/scripts/migrate.js (log $WORK/logs/migrate.log)"
in_image base-a node dist/scripts/migrate.js
if ! timeout 120 "${RUN[@]}" >"$WORK/logs/migrate.log" 2>&1; then
  tail -n 20 "$WORK/logs/migrate.log" >&2
  die "the migration entry point failed"
fi
say "migrate: exit 0"

for g in $GROUPS_RUN; do
  in_image "$g" "${IMG_CMD[@]}"
  "${RUN[@]}" >"$WORK/logs/$g.log" 2>&1 &
  PIDS+=("$!")
  say "started $g: SERVICES=$(group_services "$g") $(field Cmd | tr '\0' ' ')(log $WORK/logs/$g.log)"
done

base=http://127.0.0.1:$port
status=000
deadline=$(( SECONDS + WAIT_READY_SECS ))
while (( SECONDS < deadline )); do
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { tail -n 20 "$WORK"/logs/*.log >&2; die "a group exited early"; }; done
  status=$(curl -s -o "$WORK/logs/ready.json" -w '%{http_code}' --max-time 5 "$base/health/ready" || true)
  [[ $status == 200 ]] && break
  sleep 1
done
say "GET /health/ready $status after $(elapsed "$t0")"
[[ $status == 200 ]] || { cat "$WORK/logs/ready.json" >&2 || true; tail -n 20 "$WORK"/logs/*.log >&2; die "the gateway is not ready"; }

in_image api "${IMG_HEALTH[@]}"
timeout 10 "${RUN[@]}" || die "the image's HEALTHCHECK fails for the gateway"
say "HEALTHCHECK (api): exit 0"

# A valid CPF that no test uses: 9 random digits and their two check digits.
cpf_digits() {
  local d=() i s k
  for i in $(seq 0 8); do d+=($(( RANDOM % 10 ))); done
  for k in 9 10; do
    s=0
    for (( i=0; i<k; i++ )); do s=$(( s + d[i] * (k + 1 - i) )); done
    s=$(( (s * 10) % 11 )); (( s == 10 )) && s=0
    d+=("$s")
  done
  printf '%s' "${d[@]}"
}
cpf=$(cpf_digits)
key=$(cat "$DATA/secrets/admin_api_key")
status=$(curl -s -o "$WORK/logs/create.json" -w '%{http_code}' --max-time 15 -X POST "$base/api/v1/persons" \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d "{\"cpf\":\"$cpf\",\"nome\":\"Imagem de Teste\",\"endereco\":\"Rua da Imagem, 1\"}" || true)
say "POST /api/v1/persons $status"
[[ $status == 201 ]] || { cat "$WORK/logs/create.json" >&2; die "creating a person through the image's gateway failed"; }
# A lookup is a consultation: it states its purpose (docs/consultation-purpose.md).
status=$(curl -s -o "$WORK/logs/lookup.json" -w '%{http_code}' --max-time 15 "$base/api/v1/persons/$cpf" \
  -H "Authorization: Bearer $key" -H 'Finalidade: concessao_credito' || true)
say "GET /api/v1/persons/:cpf $status"
[[ $status == 200 ]] || { cat "$WORK/logs/lookup.json" >&2; die "looking the person up through the image's gateway failed"; }
grep -q "\"cpf\":\"$cpf\"" "$WORK/logs/lookup.json" || die "the lookup did not return the person created"
rm -f "$WORK"/logs/create.json "$WORK"/logs/lookup.json
say "checked $IMAGE against the local engines in $(elapsed "$t0")"
