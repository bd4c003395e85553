#!/usr/bin/env bash
# The browser for test/docs/swagger-ui.test.ts: Debian's Chromium at /usr/bin/chromium (playwright-core
# drives it; no browser download). Idempotent and silent when it is there; as root it installs it,
# otherwise it stops the test run before anything starts, with one line saying what to run.
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
[[ -x $CHROMIUM ]] && exit 0
[[ -n ${CHROMIUM_PATH:-} ]] && { echo "chromium.sh: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable" >&2; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
  echo "chromium.sh: $CHROMIUM is missing (the Swagger UI test drives it): sudo apt-get install chromium" >&2
  exit 1
fi
echo "installing Debian's chromium (the Swagger UI test drives it)"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium >/dev/null ||
  { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
[[ -x $CHROMIUM ]] || { echo "chromium.sh: apt-get installed chromium but $CHROMIUM is not there" >&2; exit 1; }
