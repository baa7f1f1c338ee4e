#!/usr/bin/env bash
# System packages the project uses: bubblewrap isolates model-written code (see docs/sandbox.md).
# Idempotent; where apt is missing or we are not root, warn and go on (the sandbox falls back).
set -u
if command -v bwrap >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: bubblewrap not installed (needs root + apt); the sandbox will use its weaker fallback" >&2
  exit 0
fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
  || echo "warning: could not install bubblewrap; the sandbox will use its weaker fallback" >&2
exit 0
