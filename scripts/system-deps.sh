#!/usr/bin/env bash
# System packages the test suite needs: tests start their own redis-server (and Sentinel) on
# loopback ports, and mount a small ext4 image and tmpfs file systems. Run by `make test`.
# As root with apt-get (CI, these machines), whatever is missing is installed from Debian's
# packages; elsewhere the missing packages are named, and the tests that need them skip (under
# CI=true they fail).
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ] || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have redis-server || need+=(redis-server)
have mkfs.ext4 || need+=(e2fsprogs)
# The agent tools whose configs `coord setup` writes are checked against the real CLIs
# (tests/test_real_tools.py). Under CI they are installed from npm, pinned to the versions the
# configs were verified with; elsewhere the tests skip when a CLI is missing.
tools=()
if [ "${CI:-}" = true ]; then
    have claude || tools+=(@anthropic-ai/claude-code@2.1.197)
    have codex || tools+=(@openai/codex@0.171.0)
    have gemini || tools+=(@google/gemini-cli@0.61.0)
    if [ ${#tools[@]} -gt 0 ] && ! have npm; then
        need+=(nodejs npm)
    fi
fi

install_tools() {
    if [ ${#tools[@]} -gt 0 ] && ! have npm; then
        echo "system-deps: no npm for ${tools[*]}; the tests that need them fail under CI" >&2
    elif [ ${#tools[@]} -gt 0 ]; then
        echo "system-deps: npm install -g ${tools[*]}" >&2
        DISABLE_AUTOUPDATER=1 npm install -g --no-fund --no-audit --loglevel=error "${tools[@]}" >&2
    fi
}

if [ ${#need[@]} -eq 0 ]; then
    install_tools
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
    echo "system-deps: missing ${need[*]} (apt-get install ${need[*]});" \
        "the tests that need them skip (fail under CI=true)" >&2
fi
install_tools
