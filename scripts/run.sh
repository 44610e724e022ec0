#!/usr/bin/env bash
# The one command that runs the broker on embedded defaults (MQTT 1883, MQTTS 8883, HTTP 8080 with /mqtt).
# Arguments go to the broker, e.g. --Listeners:MqttPort=1884.
set -euo pipefail
cd "$(dirname "$0")/.."
exec dotnet run --project Broker/Host -c Release -- "$@"
