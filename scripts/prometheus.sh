#!/usr/bin/env bash
# Prometheus and promtool for test/deploy/prometheus.test.ts (the rules and scrape config checked by
# promtool; a real server scraping a test mesh, an alert firing): Debian's `prometheus` package.
# Idempotent and silent when both are there; as root it installs them, otherwise it stops the test run
# before anything starts, with one line saying what to run. Debian's package would start its own
# daemon on :9090: a policy-rc.d refuses that during the install, and the service is stopped and
# disabled afterwards in case an init system started it anyway (CI has none).
set -euo pipefail

PROMETHEUS=${PROMETHEUS_PATH:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL_PATH:-/usr/bin/promtool}
[[ -x $PROMETHEUS && -x $PROMTOOL ]] && exit 0
[[ -n ${PROMETHEUS_PATH:-} && ! -x $PROMETHEUS ]] && { echo "prometheus.sh: PROMETHEUS_PATH=$PROMETHEUS is not an executable" >&2; exit 1; }
[[ -n ${PROMTOOL_PATH:-} && ! -x $PROMTOOL ]] && { echo "prometheus.sh: PROMTOOL_PATH=$PROMTOOL is not an executable" >&2; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
  echo "prometheus.sh: $PROMETHEUS or $PROMTOOL is missing (the alert-rule tests run them): sudo apt-get install --no-install-recommends prometheus" >&2
  exit 1
fi
echo "installing Debian's prometheus (promtool and a server for the alert-rule tests; its own daemon is not started)"
export DEBIAN_FRONTEND=noninteractive
# invoke-rc.d asks /usr/sbin/policy-rc.d; exit 101 = "action forbidden". Ours only if none exists.
policy=/usr/sbin/policy-rc.d
ours=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && ours=1
fi
trap '[[ $ours == 1 ]] && rm -f "$policy"' EXIT
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus >/dev/null ||
  { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus >/dev/null; }
# If something started it anyway (an init system), stop it and keep it from starting again.
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
else
  command -v update-rc.d >/dev/null && update-rc.d prometheus disable >/dev/null 2>&1 || true
  [[ -x /etc/init.d/prometheus ]] && /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
[[ -x $PROMETHEUS && -x $PROMTOOL ]] || { echo "prometheus.sh: apt-get installed prometheus but $PROMETHEUS or $PROMTOOL is not there" >&2; exit 1; }
