#!/usr/bin/env bash
# The one command that runs the product on embedded defaults: the broker with the bridges and the dashboard in one
# process (MQTT 1883, MQTTS 8883 when TLS is configured, HTTP 8080 with the dashboard at /, /mqtt, /sse, /ws,
# /metrics and /api). No Kafka or PostgreSQL needed. Arguments go to the broker, e.g. --Listeners:MqttPort=1884.
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard's browser libraries (uPlot, mqtt.js) are installed from the npm registry at build time.
if ! command -v npm >/dev/null 2>&1; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "scripts/run.sh: installing npm" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "scripts/run.sh: the .NET 10 SDK (dotnet) is not on PATH" >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
exec dotnet run --project Broker/Host -c Release -- "$@"
