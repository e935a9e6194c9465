#!/usr/bin/env bash
# Makes Debian's Chromium available for the dashboard's browser test (test/dashboard-browser.spec.ts),
# which drives it with playwright-core (never a browser download of its own). Installs the `chromium`
# package when /usr/bin/chromium (or $CHROMIUM_PATH) is missing and apt-get can be used as root;
# otherwise says so: the browser test then skips with that message. Never fails the caller.
set -uo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
  echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi
if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed and cannot install it here (needs root and apt-get); the browser test will skip"
  exit 0
fi
echo "chromium: installing Debian's package"
export DEBIAN_FRONTEND=noninteractive
if timeout 300 apt-get update -qq && timeout 900 apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo installed)"
else
  echo "chromium: the install failed; the browser test will skip"
fi
exit 0
