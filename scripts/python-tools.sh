#!/usr/bin/env bash
# The Python tools the tests run, pinned, each in its own venv under $CREDIT_MESH_DATA (default
# <repo>/.data), from PyPI: schemathesis (the API fuzzer, test/fuzz.test.ts) and check-jsonschema
# (bitbucket-pipelines.yml against the published schema, test/deploy/pipelines.test.ts).
# Idempotent; prints nothing when they are already there.
#
#   bash scripts/python-tools.sh              install what is missing
#   bash scripts/python-tools.sh path TOOL    print the path of a tool's command (st, check-jsonschema)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DATA=${CREDIT_MESH_DATA:-$ROOT/.data}

# command  venv  package  version
TOOLS=(
  "st schemathesis schemathesis 4.32.5"
  "check-jsonschema check-jsonschema check-jsonschema 0.39.0"
)

if [[ ${1:-} == path ]]; then
  for t in "${TOOLS[@]}"; do
    read -r cmd venv _ _ <<<"$t"
    [[ $cmd == "${2:-}" ]] && { echo "$DATA/$venv/bin/$cmd"; exit 0; }
  done
  echo "python-tools.sh: no tool named '${2:-}'" >&2; exit 1
fi

venv_module() {
  command -v python3 >/dev/null || { echo "python-tools.sh: python3 is missing (apt-get install python3 python3-venv)" >&2; exit 1; }
  python3 -c 'import ensurepip, venv' 2>/dev/null && return
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null; }
  else
    echo "python-tools.sh: python3's venv module is missing: sudo apt-get install python3-venv" >&2
    exit 1
  fi
}

for t in "${TOOLS[@]}"; do
  read -r cmd venv package version <<<"$t"
  dir=$DATA/$venv
  have=$("$dir/bin/python" -c "from importlib.metadata import version; print(version('$package'))" 2>/dev/null || true)
  [[ -x $dir/bin/$cmd && $have == "$version" ]] && continue
  venv_module
  echo "installing $package $version into $dir"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
  "$dir/bin/$cmd" --version
done
