#!/usr/bin/env bash
# The one test command. On a fresh Debian 12 machine (as root, or with sudo) it first installs what the
# interop tests and benchmarks drive — only what is missing — then builds and runs every test in Release.
set -euo pipefail
cd "$(dirname "$0")/.."

# mosquitto-clients and python3-paho-mqtt: outside clients for the interop tests (never skipped when absent).
# mosquitto: the reference broker the benchmarks compare against.
# chromium: the browser the Playwright dashboard tests drive. postgresql: throwaway clusters (initdb) for Telemetry.
# influxdb: the InfluxDB 1.x server the Telemetry line-protocol sink is tested against. fonts-dejavu-core: readable
# screenshots from the browser tests. npm (checked as a command: it may come with a nodejs package): the dashboard's
# browser libraries are installed from the npm registry at build time. haproxy: `haproxy -c` checks the compose
# cluster's load balancer configuration.
packages=(mosquitto-clients python3-paho-mqtt mosquitto chromium fonts-dejavu-core postgresql influxdb haproxy)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
command -v stdbuf >/dev/null 2>&1 || missing+=(coreutils)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]} > 0)); then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "scripts/test.sh: the .NET 10 SDK (dotnet) is not on PATH" >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# A hung test is killed after 5 minutes (no dump: the blame sequence names it). The console logger's
# per-project summary ("Passed!  - Failed: 0, Passed: N ...") is the last thing printed; the exit code is dotnet's.
exec dotnet test IotRealtime.sln -c Release \
  --blame-hang-timeout 5m --blame-hang-dump-type none \
  --logger "console;verbosity=minimal"
