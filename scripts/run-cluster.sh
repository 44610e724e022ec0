#!/usr/bin/env bash
# An N-node broker cluster on this machine, to try clustering without PostgreSQL: Development membership (node 1's
# silo is the primary), each node its own ports and data directory. Prints each node's ports; Ctrl+C stops them all.
#   bash scripts/run-cluster.sh [N] [--Section:Key=value ...]     (N: 2-9, default 3; extra keys go to every node)
# Node i (1-based): MQTT 1882+i, HTTP 8079+i (dashboard, /mqtt, /metrics, /api/cluster), silo 11110+i,
# data ./data/cluster/node-i. Clients may connect to any node: the cluster is one broker.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then nodes=$1; shift; fi
if ((nodes < 2 || nodes > 9)); then
  echo "scripts/run-cluster.sh: N must be 2-9 (was $nodes)" >&2
  exit 2
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "scripts/run-cluster.sh: the .NET 10 SDK (dotnet) is not on PATH" >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out=artifacts/run-cluster
echo "scripts/run-cluster.sh: building the broker (Release) into $out" >&2
dotnet build Broker/Host -c Release -o "$out" --nologo -v q >"$out.build.log" 2>&1 \
  || { echo "scripts/run-cluster.sh: build failed, see $out.build.log" >&2; exit 1; }

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

for ((i = 1; i <= nodes; i++)); do
  mkdir -p "data/cluster/node-$i"
  dotnet "$out/iotrealtime-broker.dll" \
    --Listeners:MqttPort=$((1882 + i)) --Listeners:HttpPort=$((8079 + i)) --Listeners:MqttsPort=-1 --Listeners:HttpsPort=-1 \
    --Data:Directory="data/cluster/node-$i" \
    --Cluster:Enabled=true --Cluster:NodeId="node-$i" --Cluster:Membership=Development \
    --Cluster:SiloPort=$((11110 + i)) --Cluster:PrimaryEndpoint=127.0.0.1:11111 \
    "$@" > >(sed -u "s/^/[node-$i] /") 2>&1 &
  pids+=($!) # the broker's own PID (its output goes through sed by process substitution)
  echo "node-$i: mqtt 127.0.0.1:$((1882 + i)), http http://127.0.0.1:$((8079 + i))/, silo 127.0.0.1:$((11110 + i)), data data/cluster/node-$i" >&2
done
echo "scripts/run-cluster.sh: $nodes nodes started; Ctrl+C stops them" >&2
wait
