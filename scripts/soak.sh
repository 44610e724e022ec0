#!/usr/bin/env bash
# Soak (not part of CI): our broker under connect churn, QoS 1/2 load, client connection resets and a broker SIGKILL +
# restart every --kill-every seconds on the same data directory, checking that no acknowledged message is lost.
#   scripts/soak.sh [--duration S] [--kill-every S] [--publishers N] [--rate N] [--inflight N] [--churn-rate N]
#                   [--client-kill-every S] [--durability Fsync|Write] [--sample-every S] [--allow-dirty]
# Defaults: 30 minutes, a broker SIGKILL every 300 s, 20 persistent publishers (even ids QoS 1, odd ids QoS 2) at
# 1,000 msg/s in all with <= 100 unacknowledged each, one persistent subscriber on soak/#, 50 short-lived connections
# per second, a client reset (no DISCONNECT) every 15 s, the default Fsync store, broker RSS every 10 s.
# The client side is `iotrealtime-sim soak` (docs/simulator.md): every client reconnects after any loss of its
# connection and resends what the spec says it must. "Acknowledged" = the publisher got PUBACK (QoS 1) or PUBCOMP
# (QoS 2); every such message must reach the subscriber, QoS 2 at most once, and no persistent session may be forgotten.
# Writes docs/benchmarks/soak-<stamp>.txt (summary) and soak-<stamp>-rss.csv (the RSS curve). Loopback only; bounded
# by --duration plus the simulator's 60 s drain and a grace; every process is stopped by PID, also on Ctrl-C.
# Exit code 0 when the run is clean.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=soak
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

duration=1800
kill_every=300
publishers=20
rate=1000
inflight=100
churn_rate=50
client_kill_every=15
durability=Fsync
sample_every=10
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --kill-every) kill_every=$2; shift 2 ;;
        --publishers) publishers=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --inflight) inflight=$2; shift 2 ;;
        --churn-rate) churn_rate=$2; shift 2 ;;
        --client-kill-every) client_kill_every=$2; shift 2 ;;
        --durability) durability=$2; shift 2 ;;
        --sample-every) sample_every=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,15p "$0"; exit 0 ;;
        *) echo "soak: unknown option '$1' (accepted: --duration, --kill-every, --publishers, --rate, --inflight, --churn-rate, --client-kill-every, --durability, --sample-every, --allow-dirty)" >&2; exit 2 ;;
    esac
done
for n in duration kill_every publishers rate inflight sample_every; do
    bench_require_positive "${n//_/-}" "${!n}"
done
[[ $churn_rate =~ ^[0-9]+$ && $client_kill_every =~ ^[0-9]+$ ]] || { echo "soak: --churn-rate and --client-kill-every take whole numbers (0 = off)" >&2; exit 2; }
[[ $durability == Fsync || $durability == Write ]] || { echo "soak: --durability takes Fsync or Write (a broker SIGKILL loses everything under None) (was '$durability')" >&2; exit 2; }
(( duration <= 86400 && publishers <= 1000 && rate <= 100000 && churn_rate <= 5000 )) \
    || { echo "soak: at most --duration 86400, --publishers 1000, --rate 100000, --churn-rate 5000" >&2; exit 2; }
bench_check_tree

bench_limit_open_files 20000
bench_init_work soak
bench_build
bench_results soak
csv=${bench_out%.txt}-rss.csv
echo "elapsed_s,broker_pid,broker_rss_kb,simulator_rss_kb,broker_restarts" >"$csv"

port=$(free_port)
http_port=$(free_port)
data=$work/data
mkdir -p "$data"
restarts=0
broker_pid=

# Starts the broker on the same ports and data directory every time; logs to broker-<restarts>.log.
start_broker() {
    dotnet "$broker_dll" --mqtt-port "$port" --http-port "$http_port" --mqtts-port -1 --https-port -1 \
        --Listeners:BindAddress=127.0.0.1 --Data:Directory="$data" --Store:Durability="$durability" --Broker:SysInterval=0 \
        >"$work/broker-$restarts.log" 2>&1 &
    broker_pid=$!
    pids+=("$broker_pid")
    local started=$SECONDS
    if ! wait_listening "$broker_pid" "$port"; then
        tail -20 "$work/broker-$restarts.log"
        echo "soak: the broker did not listen on $port (start $restarts)" >&2
        exit 1
    fi
    echo "== broker pid $broker_pid listening on 127.0.0.1:$port after $((SECONDS - started)) s (start $restarts)"
}

start_broker
sim_started=$SECONDS
dotnet "$sim_dll" soak --host 127.0.0.1 --port "$port" --publishers "$publishers" --rate "$rate" --inflight "$inflight" \
    --churn-rate "$churn_rate" --client-kill-every "$client_kill_every" --duration "$duration" --json "$work/soak.json" \
    >"$work/sim.log" 2>&1 &
sim_pid=$!
pids+=("$sim_pid")

kills=()
next_kill=$kill_every
next_sample=0
shown=0
# The simulator stops by itself after --duration and its drain (60 s); past this it is stopped.
deadline=$((duration + 60 + 120))
while kill -0 "$sim_pid" 2>/dev/null; do
    elapsed=$((SECONDS - sim_started))
    if (( elapsed >= next_sample )); then
        echo "$elapsed,$broker_pid,$(rss_kb "$broker_pid" 2>/dev/null || echo 0),$(rss_kb "$sim_pid" 2>/dev/null || echo 0),$restarts" >>"$csv"
        next_sample=$((next_sample + sample_every))
    fi
    if (( elapsed >= next_kill && elapsed < duration )); then
        before=$(rss_kb "$broker_pid" 2>/dev/null || echo 0)
        kill -9 "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
        restarts=$((restarts + 1))
        echo "== $elapsed s: SIGKILL broker pid $broker_pid (RSS $((before / 1024)) MB); restarting on the same data directory"
        restart_at=$SECONDS
        start_broker
        kills+=("$elapsed s: SIGKILL at RSS $((before / 1024)) MB, listening again after $((SECONDS - restart_at)) s")
        next_kill=$((next_kill + kill_every))
    fi
    if (( elapsed > deadline )); then
        echo "soak: the simulator did not finish within $deadline s; stopping it" >&2
        stop_pid "$sim_pid"
        break
    fi
    # Show the simulator's new lines (progress every 10 s, client resets) as they come.
    lines=$(wc -l <"$work/sim.log")
    (( lines > shown )) && sed -n "$((shown + 1)),${lines}p" "$work/sim.log" | sed 's/^/    /'
    shown=$lines
    sleep 1
done
sim_rc=0
wait "$sim_pid" 2>/dev/null || sim_rc=$?
final_rss=$(rss_kb "$broker_pid" 2>/dev/null || echo 0)
echo "$((SECONDS - sim_started)),$broker_pid,$final_rss,0,$restarts" >>"$csv"
stop_pid "$broker_pid"
grep -vE '^client reset' "$work/sim.log" | tail -12 | sed 's/^/    /'
[[ -s $work/soak.json ]] || { echo "soak: the simulator wrote no report (exit $sim_rc); log in $work/sim.log" >&2; exit 1; }

{
    bench_header "Soak: churn, QoS 1/2 load, client resets, broker SIGKILL + restart every $kill_every s on one data directory"
    echo "# broker: iotrealtime-broker --Store:Durability=$durability --Broker:SysInterval=0, one data directory for every restart, 127.0.0.1:$port"
    echo "# load: iotrealtime-sim soak --publishers $publishers --rate $rate --inflight $inflight --churn-rate $churn_rate --client-kill-every $client_kill_every --duration $duration"
    echo "# acknowledged = PUBACK (QoS 1) or PUBCOMP (QoS 2) at the publisher; every one must reach the persistent subscriber"
    echo "# RSS curve: $(basename "$csv") (every $sample_every s; broker_pid changes at each restart)"
    echo
    echo "broker SIGKILLs: $restarts"
    for k in "${kills[@]}"; do echo "  $k"; done
    echo
    grep -vE '^client reset' "$work/sim.log" | sed -n '/^scenario/,$p'
    echo
    echo "simulator progress (every 10 s):"
    grep -E '^\[' "$work/sim.log" | sed 's/^/  /'
    echo
    echo "recovery lines from the broker logs:"
    grep -h -i -E 'recover|restor|torn|truncat|replay' "$work"/broker-*.log | head -20 | sed 's/^/  /' || true
    echo
    python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if int(r["broker_rss_kb"]) > 0]
print("broker RSS (MB) per broker process: first sample, median, max, last sample")
lives = {}
for r in rows: lives.setdefault(r["broker_pid"], []).append(int(r["broker_rss_kb"]) / 1024)
for i, (pid, v) in enumerate(lives.items()):
    print(f"  start {i}: pid {pid:>8}  {v[0]:7.1f} {statistics.median(v):7.1f} {max(v):7.1f} {v[-1]:7.1f}  ({len(v)} samples)")
allv = [int(r["broker_rss_kb"]) / 1024 for r in rows]
if allv: print(f"  overall: min {min(allv):.1f}, median {statistics.median(allv):.1f}, max {max(allv):.1f} MB over {len(allv)} samples")
PY
    echo
    echo "result: $(jq -r 'if .clean then "clean: zero acknowledged loss, no QoS 2 duplicate, no session or QoS 2 state forgotten" else "NOT CLEAN: \(.acknowledged_lost) acknowledged lost, \(.duplicates_qos2) QoS 2 duplicates, \(.sessions_lost) sessions forgotten, \(.packet_ids_reused) QoS 2 packet ids reused before PUBREL, \(.unacknowledged_at_end) unacknowledged at the end" end' "$work/soak.json")"
} >"$bench_out"
bench_finish
echo
cat "$bench_out"
echo "written to ${bench_out#"$root"/} and ${csv#"$root"/}; logs in $work"
exit "$sim_rc"
