#!/bin/sh
# Installs the Debian packages the HAProxy comparison in bench/ needs:
# haproxy (the baseline), nginx (the four backend servers) and wrk (the
# closed-loop load generator). Idempotent: does nothing when all three are
# already on PATH, and runs "apt-get update" only when a package is missing.
set -eu

missing=""
for tool in haproxy nginx wrk; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -z "$missing" ]; then
	echo "install-bench-deps: haproxy, nginx and wrk already installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
echo "install-bench-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive

# The Debian packages start their system services on install; the benchmark
# runs its own instances with their own configs and wants nothing listening on
# :80. A policy-rc.d that answers 101 ("action forbidden") stops invoke-rc.d
# from starting them. Only a policy file this script created is removed.
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod +x "$policy"
	ours=1
fi
cleanup() { if [ -n "$ours" ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT INT TERM

# Refresh the package lists once, only if one of the packages is unknown.
for pkg in $missing; do
	if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		$SUDO apt-get update
		break
	fi
done
# shellcheck disable=SC2086
$SUDO apt-get install -y haproxy wrk nginx --no-install-recommends # installed ones are left alone
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	for svc in haproxy nginx; do
		$SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
	done
fi
for tool in haproxy nginx wrk; do
	command -v "$tool" >/dev/null 2>&1 || { echo "install-bench-deps: $tool still missing" >&2; exit 1; }
done
haproxy -v | head -n 1
nginx -v 2>&1
