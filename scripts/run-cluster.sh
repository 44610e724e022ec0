#!/usr/bin/env bash
# An N-node broker cluster on this machine, to try clustering without PostgreSQL: Development membership (node 1's
# silo is the primary), each node its own ports and data directory. Waits until every node answers /readyz, prints
# each node's ports; Ctrl+C (or SIGTERM to this script) stops them all, and the script exits once they are gone.
# (Started in the background by another script without job control, it ignores SIGINT, as bash does for such jobs:
# stop it with SIGTERM there.)
#   bash scripts/run-cluster.sh [N] [--Section:Key=value ...]     (N: 2-9, default 3; extra keys go to every node)
# Node i (1-based): MQTT MQTT_BASE+i (1882+i), HTTP HTTP_BASE+i (8079+i: dashboard, /mqtt, /metrics, /readyz),
# silo SILO_BASE+i (11110+i), data DATA_DIR/node-i (./data/cluster/node-i). Clients may connect to any node: the
# cluster is one broker. BROKER_DLL=path/iotrealtime-broker.dll runs that build instead of building into
# artifacts/run-cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then nodes=$1; shift; fi
if ((nodes < 2 || nodes > 9)); then
  echo "scripts/run-cluster.sh: N must be 2-9 (was $nodes)" >&2
  exit 2
fi
mqtt_base=${MQTT_BASE:-1882} http_base=${HTTP_BASE:-8079} silo_base=${SILO_BASE:-11110}
data_dir=${DATA_DIR:-data/cluster}
for base in "$mqtt_base" "$http_base" "$silo_base"; do
  if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1 || base + nodes > 65535)); then
    echo "scripts/run-cluster.sh: MQTT_BASE, HTTP_BASE and SILO_BASE must be ports (was '$base')" >&2
    exit 2
  fi
done
if ! command -v dotnet >/dev/null 2>&1; then
  echo "scripts/run-cluster.sh: the .NET 10 SDK (dotnet) is not on PATH" >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dll=${BROKER_DLL:-}
if [[ -z $dll ]]; then
  out=artifacts/run-cluster
  mkdir -p artifacts
  echo "scripts/run-cluster.sh: building the broker (Release) into $out" >&2
  dotnet build Broker/Host -c Release -o "$out" --nologo -v q >"$out.build.log" 2>&1 \
    || { echo "scripts/run-cluster.sh: build failed, see $out.build.log" >&2; exit 1; }
  dll=$out/iotrealtime-broker.dll
fi
if [[ ! -f $dll ]]; then
  echo "scripts/run-cluster.sh: $dll not found" >&2
  exit 1
fi

pids=()
# SIGTERM to every node (each drains and leaves the membership), then SIGKILL to any still there after 20 s.
stop() {
  trap - INT TERM EXIT
  local pid deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "scripts/run-cluster.sh: node with PID $pid did not stop in 20 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  echo "scripts/run-cluster.sh: all nodes stopped" >&2
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

for ((i = 1; i <= nodes; i++)); do
  mkdir -p "$data_dir/node-$i"
  # exec: the background job's PID is the broker's own, so a signal reaches the broker, not a wrapper shell
  (exec dotnet "$dll" \
    --Listeners:BindAddress=127.0.0.1 \
    --Listeners:MqttPort=$((mqtt_base + i)) --Listeners:HttpPort=$((http_base + i)) --Listeners:MqttsPort=-1 --Listeners:HttpsPort=-1 \
    --Data:Directory="$data_dir/node-$i" \
    --Cluster:Enabled=true --Cluster:NodeId="node-$i" --Cluster:Membership=Development \
    --Cluster:SiloPort=$((silo_base + i)) --Cluster:PrimaryEndpoint=127.0.0.1:$((silo_base + 1)) \
    "$@") > >(exec sed -u "s/^/[node-$i] /") 2>&1 &
  pids+=($!)
  echo "node-$i: pid $!, mqtt 127.0.0.1:$((mqtt_base + i)), http http://127.0.0.1:$((http_base + i))/, silo 127.0.0.1:$((silo_base + i)), data $data_dir/node-$i" >&2
done

# Ready when every node answers /readyz (bounded: 90 s), or fail naming the node.
for ((i = 1; i <= nodes; i++)); do
  deadline=$((SECONDS + 90))
  until curl -fsS -o /dev/null "http://127.0.0.1:$((http_base + i))/readyz" 2>/dev/null; do
    if ! kill -0 "${pids[i - 1]}" 2>/dev/null; then
      echo "scripts/run-cluster.sh: node-$i exited before it was ready" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "scripts/run-cluster.sh: node-$i not ready after 90 s" >&2
      exit 1
    fi
    sleep 0.5
  done
done
echo "scripts/run-cluster.sh: $nodes nodes ready; Ctrl+C stops them" >&2

# Runs until a signal (the traps stop the nodes and exit), or until any node exits on its own: then the others stop too.
set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "scripts/run-cluster.sh: a node exited (status $status); stopping the others" >&2
exit 1
