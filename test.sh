#!/usr/bin/env bash
# The one test command: installs what the tests need (when root), builds, runs every test,
# prints a summary line "tests: N passed, N failed, N skipped", and exits non-zero on failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Debian packages the tests drive: command (or python module) -> package.
declare -A wanted=(
  [tshark]=tshark [tcpdump]=tcpdump [ip]=iproute2 [socat]=socat [ping]=iputils-ping
  [curl]=curl [/usr/bin/python3]=python3 [scapy]=python3-scapy [gcc]=gcc
  [iperf3]=iperf3 [ethtool]=ethtool [redis-cli]=redis-tools [hping3]=hping3 [sockperf]=sockperf [nft]=nftables
  [redis-server]=redis-server [nginx]=nginx [h2load]=nghttp2-client [wrk]=wrk [chromium]=chromium [traceroute]=traceroute
  [pgrep]=procps [sysctl]=procps [memcached]=memcached [memccapable]=libmemcached-tools [node]=nodejs
)

missing=()
for what in "${!wanted[@]}"; do
  if [ "$what" = scapy ]; then
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import scapy' 2>/dev/null || missing+=("${wanted[$what]}")
  elif ! command -v "$what" >/dev/null 2>&1; then
    missing+=("${wanted[$what]}")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    install() { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
    # The mirror has transient failures: try once more after a pause.
    install || { sleep 5; install; } || echo "test.sh: could not install ${missing[*]}; the tests that need them will say so"
  else
    echo "test.sh: not root, so not installing ${missing[*]}; the tests that need them will skip and say why"
  fi
fi

echo "test.sh: building (Release)"
if ! dotnet build Netloom.slnx -c Release --nologo -v quiet -clp:ErrorsOnly; then
  echo "test.sh: build failed"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

passed=0 failed=0 skipped=0 status=0
for proj in tests/Netloom.Tests tests/Netloom.Interop.Tests; do
  echo "test.sh: running $proj"
  log=$(mktemp)
  # Live: skips with their reasons, failures with their messages, and the totals.
  dotnet test "$proj" -c Release --no-build --nologo -v quiet --logger "console;verbosity=normal" 2>&1 | tee "$log" \
    | grep -E -A8 '^\s+Failed [A-Za-z]|\[SKIP\]' | grep -v -E '^\s+at System\.'
  rc=${PIPESTATUS[0]}   # no "|| true" above: it would replace PIPESTATUS with true's status
  grep -E '^Total tests|^\s+(Passed|Failed|Skipped): ' "$log" || true
  # The console logger ends with "Total tests: N", then "Passed: N", "Failed: N", "Skipped: N" as present.
  count() { grep -E "^\s+$1: +[0-9]+\s*$" "$log" | tail -1 | grep -oE '[0-9]+' || echo 0; }
  if grep -qE '^Total tests: [0-9]+' "$log"; then
    passed=$((passed + $(count Passed))) failed=$((failed + $(count Failed))) skipped=$((skipped + $(count Skipped)))
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
    tail -40 "$log"
  fi
  [ "$rc" -ne 0 ] && status=1
  rm -f "$log"
done

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$passed" -gt 0 ] || status=1
[ "$failed" -eq 0 ] || status=1
exit $status
