#!/usr/bin/env bash
# The API fuzzer for test/fuzz.test.ts: schemathesis, pinned, in a venv under $CREDIT_MESH_DATA
# (default <repo>/.data). Idempotent; prints nothing when it is already there.
#
#   bash scripts/schemathesis.sh          install if missing
#   bash scripts/schemathesis.sh path     print the path of the `st` command
set -euo pipefail

VERSION=4.32.5
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DATA=${CREDIT_MESH_DATA:-$ROOT/.data}
VENV=$DATA/schemathesis
ST=$VENV/bin/st

if [[ ${1:-} == path ]]; then echo "$ST"; exit 0; fi
if [[ -x $ST ]] && [[ $("$VENV/bin/python" -c 'import schemathesis; print(schemathesis.__version__)' 2>/dev/null) == "$VERSION" ]]; then exit 0; fi

command -v python3 >/dev/null || { echo "schemathesis.sh: python3 is missing (apt-get install python3 python3-venv)" >&2; exit 1; }
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null; }
  else
    echo "schemathesis.sh: python3's venv module is missing: sudo apt-get install python3-venv" >&2
    exit 1
  fi
fi

echo "installing schemathesis $VERSION into $VENV"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
"$ST" --version
