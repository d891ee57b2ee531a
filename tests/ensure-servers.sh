#!/usr/bin/env bash
# Make sure the binaries used by tests/servers.py exist: redis-server and a PostgreSQL
# server (postgres + initdb); and Chromium with its driver and a font with Arabic letters for
# the browser tests (tests/test_*_browser.py). Installs the missing Debian packages if needed;
# nothing else is started, stopped or configured (Debian's postgresql package may create and
# start its own cluster on install, which the tests neither use nor touch).
set -euo pipefail

have_redis() {
    command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server || -x /usr/sbin/redis-server ]]
}

postgres_bin() {
    local candidate
    if command -v postgres >/dev/null 2>&1; then
        command -v postgres
        return 0
    fi
    # newest /usr/lib/postgresql/<version>/bin/postgres
    candidate=$(ls -1d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$candidate" && -x "$candidate" ]]; then
        echo "$candidate"
        return 0
    fi
    return 1
}

missing=()
have_redis || missing+=(redis-server)
postgres_bin >/dev/null || missing+=(postgresql)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/chromedriver ]] || missing+=(chromium-driver)
# Chromium draws Arabic with the system's fonts: without one that has Arabic letters the
# console's and the web chat's screenshots (build/screenshots) show empty boxes. Debian's
# fontconfig picks DejaVu first, but only when no other font came before it.
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)

if ((${#missing[@]} == 0)); then
    echo "ensure-servers: found $(command -v redis-server || echo /usr/bin/redis-server), $(postgres_bin) and /usr/bin/chromium"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "ensure-servers: missing ${missing[*]} and not root, but sudo is not available" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

if ! have_redis || ! postgres_bin >/dev/null || [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]] \
        || [[ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]]; then
    echo "ensure-servers: installed ${missing[*]}, but redis-server, postgres, chromium or the font is still missing" >&2
    exit 1
fi
echo "ensure-servers: installed ${missing[*]}; using $(command -v redis-server || echo /usr/bin/redis-server) and $(postgres_bin)"
