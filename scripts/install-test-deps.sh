#!/bin/sh
# Installs the Debian packages that the tests in stats/e2e/ run against:
#
#   haproxy   the reference the stats listener is compared with (the
#             differential test expects Debian 12's 2.6.x, built with the
#             prometheus-exporter service);
#   chromium  the headless browser that loads the stats page.
#
# Idempotent: a package that dpkg reports installed is left alone, and the
# package lists are refreshed ("apt-get update") only when one is missing.
# Runs as root, or through sudo otherwise.
set -eu

packages="haproxy chromium"

installed() {
	dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=""
for pkg in $packages; do
	installed "$pkg" || missing="$missing $pkg"
done

if [ -n "$missing" ]; then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		SUDO="sudo"
	fi
	echo "install-test-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive

	# Debian's haproxy package starts its system service on install; the
	# tests run their own instances and want nothing of it. A policy-rc.d
	# that answers 101 ("action forbidden") keeps invoke-rc.d from starting
	# it. Only a policy file this script wrote is removed again.
	policy=/usr/sbin/policy-rc.d
	wrote_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
		$SUDO chmod 755 "$policy"
		wrote_policy=1
	fi
	remove_policy() {
		if [ -n "$wrote_policy" ]; then
			$SUDO rm -f "$policy"
		fi
	}
	trap remove_policy EXIT INT TERM

	$SUDO apt-get update
	# Every package named, installed or not: apt-get leaves the installed
	# ones alone.
	$SUDO apt-get install -y haproxy chromium --no-install-recommends
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now haproxy >/dev/null 2>&1 || true
	fi
else
	echo "install-test-deps: haproxy and chromium already installed"
fi

for pkg in $packages; do
	if ! installed "$pkg"; then
		echo "install-test-deps: $pkg is still not installed" >&2
		exit 1
	fi
done
haproxy -v | head -n 1
chromium --version 2>/dev/null || true
