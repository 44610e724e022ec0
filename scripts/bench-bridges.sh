#!/usr/bin/env bash
# Bridges figures: broker RSS per idle SSE stream and per idle WebSocket, and events/s fanned out to many SSE streams.
#   scripts/bench-bridges.sh [--idle N] [--streams N] [--shards N] [--rates "20 50 100"] [--duration S] [--allow-dirty]
# The broker runs with the bridges in-process (Store:Durability=None, SysInterval=0) on free loopback ports; clients
# are Python asyncio processes (raw HTTP/1.1, WebSocket and MQTT, no libraries), sharded over processes and source
# addresses 127.0.0.2+ so no process nears the 20,000 open-file limit and no source address runs out of ports.
#   idle:   RSS before and after N idle SSE streams (one filter each, no traffic), then the same for N idle WebSockets
#           (one channel each, answering pings); KB per stream = (loaded - baseline) / held.
#   fanout: --streams SSE streams on bench/#, one MQTT publisher at each rate (msg/s, QoS 0, ~60-byte payload) for
#           --duration s; events/s = what the server counted sent (iotrealtime_bridges_events_sent_total) over the time
#           it took, and the share the Python clients had read by then (they, not the server, are the slower side here).
# Results go to docs/benchmarks/bridges-<UTC date and time>.txt, a new file per run; a tree with uncommitted changes is
# refused unless --allow-dirty. Every step is bounded in time; processes stop by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=bench-bridges
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

idle=5000
streams=10000
shards=4
rates="20 50 100"
duration=10
while [[ $# -gt 0 ]]; do
    case "$1" in
        --idle) idle=$2; shift 2 ;;
        --streams) streams=$2; shift 2 ;;
        --shards) shards=$2; shift 2 ;;
        --rates) rates=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "bench-bridges: unknown option '$1' (accepted: --idle, --streams, --shards, --rates, --duration, --allow-dirty)" >&2; exit 2 ;;
    esac
done
for n in idle streams shards duration; do bench_require_positive "$n" "${!n}"; done
for r in $rates; do bench_require_positive rates "$r"; done
(( streams / shards < 18000 && idle < 18000 )) || { echo "bench-bridges: keep --idle and --streams/--shards under 18000 (open-file limit 20000 per process)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench-bridges: python3 is required for the clients" >&2; exit 1; }
bench_check_tree
bench_limit_open_files 20000
echo "open-file limit for started processes: $(ulimit -n)"

bench_init_work bench-bridges
echo "== build (Release)"
dotnet build Broker/Host -c Release -o "$root/artifacts/bench/broker" --nologo -v q >"$work/build-broker.log" 2>&1 \
    || { tail -30 "$work/build-broker.log"; echo "bench-bridges: broker build failed" >&2; exit 1; }
broker_dll=$root/artifacts/bench/broker/iotrealtime-broker.dll
bench_results bridges

cat >"$work/client.py" <<'PY'
# Bridges load client: idle SSE/WebSocket streams, an SSE fan-out counter, and a QoS 0 MQTT publisher. asyncio only.
import asyncio, base64, json, os, socket, struct, sys, time

def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

host, port = "127.0.0.1", int(arg("--port", "0"))
count = int(arg("--count", "0"))
source = arg("--source", "127.0.0.2")
hold = float(arg("--hold", "120"))
status = arg("--status")

async def open_from(src):
    return await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(src, 0)), 30)

async def sse(i, counter, ready):
    reader, writer = await open_from(source)
    writer.write(f"GET /sse?topic={arg('--topic', 'idle')}%2F{i if arg('--topic') is None else '%23'} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    ready.append(1)
    tail = b""
    while True:
        data = await reader.read(65536)
        if not data:
            return
        chunk = tail + data
        counter[0] += chunk.count(b"event: message")
        tail = chunk[-16:]
        if b"event: message" in tail:  # counted already; keep the tail from matching twice
            tail = tail[tail.rindex(b"event: message") + 1:]

async def ws(i, ready):
    reader, writer = await open_from(source)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    def frame(opcode, payload):
        mask = os.urandom(4)
        masked = bytes(b ^ mask[j % 4] for j, b in enumerate(payload))
        n = len(payload)
        header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        return header + mask + masked
    writer.write(frame(1, json.dumps({"op": "sub", "ch": f"idle/{i}"}).encode()))
    ready.append(1)
    while True:  # answer pings so the server keeps the socket
        h = await reader.readexactly(2)
        n = h[1] & 0x7F
        if n == 126: n = struct.unpack(">H", await reader.readexactly(2))[0]
        elif n == 127: n = struct.unpack(">Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(n)
        if h[0] & 0x0F == 0x9:
            writer.write(frame(0xA, payload))
        elif h[0] & 0x0F == 0x8:
            return

async def hold_streams(kind):
    ready, counter, tasks = [], [0], []
    for i in range(count):
        tasks.append(asyncio.create_task(sse(i, counter, ready) if kind == "sse" else ws(i, ready)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    deadline = time.time() + 120
    while len(ready) < count and time.time() < deadline:
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
        await asyncio.sleep(0.1)
    print(f"HOLDING {len(ready)}", flush=True)
    start, start_count = time.time(), counter[0]
    end = time.time() + hold
    while time.time() < end:
        await asyncio.sleep(0.5)
        if status:
            with open(status + ".tmp", "w") as f:
                json.dump({"held": len(ready), "received": counter[0], "at": time.time()}, f)
            os.replace(status + ".tmp", status)

async def publish():
    rate, seconds, topic = float(arg("--rate")), float(arg("--duration")), arg("--topic", "bench/1")
    reader, writer = await asyncio.open_connection(host, port)
    cid = b"bench-pub"
    var = b"\x00\x04MQTT\x04\x02\x00\x3c"
    body = var + struct.pack(">H", len(cid)) + cid
    writer.write(bytes([0x10, len(body)]) + body)
    await reader.readexactly(4)  # CONNACK
    t = topic.encode()
    sent, start = 0, time.time()
    while time.time() - start < seconds:
        due = int((time.time() - start) * rate)
        while sent < due:
            payload = json.dumps({"seq": sent, "pad": "x" * 40}).encode()
            rest = struct.pack(">H", len(t)) + t + payload
            writer.write(bytes([0x30, len(rest)]) + rest)
            sent += 1
        await writer.drain()
        await asyncio.sleep(0.005)
    writer.write(b"\xe0\x00")
    await writer.drain()
    print(f"PUBLISHED {sent} in {time.time() - start:.2f} s", flush=True)

mode = sys.argv[1]
asyncio.run(publish() if mode == "publish" else hold_streams(mode))
PY

metric() { curl -s "http://127.0.0.1:$http_port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

stable_rss_kb() {
    local pid=$1 prev cur stable=0
    prev=$(rss_kb "$pid")
    for _ in $(seq 1 30); do
        sleep 2
        cur=$(rss_kb "$pid")
        local diff=$((cur > prev ? cur - prev : prev - cur))
        if (( diff * 100 <= prev || diff <= 256 )); then stable=$((stable + 1)); else stable=0; fi
        prev=$cur
        if (( stable >= 2 )); then echo "$cur"; return 0; fi
    done
    echo "$cur"
}

start_broker() {
    local dir=$1
    mkdir -p "$dir/data"
    mqtt_port=$(free_port)
    http_port=$(free_port)
    dotnet "$broker_dll" --Listeners:BindAddress=127.0.0.1 --Listeners:MqttPort="$mqtt_port" --Listeners:HttpPort="$http_port" \
        --Listeners:MqttsPort=-1 --Listeners:HttpsPort=-1 --Data:Directory="$dir/data" --Store:Durability=None --Broker:SysInterval=0 \
        --Bridges:Sse:MaxStreamsPerClient=100000 --Bridges:WebSocket:MaxSocketsPerClient=100000 >"$dir/broker.log" 2>&1 &
    broker_pid=$!
    pids+=("$broker_pid")
    bench_wait_broker ours "$broker_pid" "$http_port" "$dir"
}

# Starts N streams of KIND sharded over source addresses (at most 5000 per address), waits until all hold; sets client_pids.
start_clients() {
    local kind=$1 total=$2 nshards=$3 dir=$4 extra=("${@:5}") per left s n
    per=$(( (total + nshards - 1) / nshards ))
    left=$total
    client_pids=()
    for s in $(seq 1 "$nshards"); do
        n=$(( left < per ? left : per ))
        (( n > 0 )) || break
        left=$((left - n))
        python3 "$work/client.py" "$kind" --port "$http_port" --count "$n" --source "127.0.0.$((s + 1))" --hold 600 \
            --status "$dir/client-$s.json" "${extra[@]}" >"$dir/client-$s.log" 2>&1 &
        client_pids+=($!)
        pids+=($!)
    done
    local deadline=$((SECONDS + 180))
    for s in $(seq 1 ${#client_pids[@]}); do
        until grep -q '^HOLDING' "$dir/client-$s.log"; do
            if ! kill -0 "${client_pids[$((s - 1))]}" 2>/dev/null || (( SECONDS > deadline )); then
                tail -5 "$dir/client-$s.log"; echo "bench-bridges: client shard $s did not get its streams open" >&2; exit 1
            fi
            sleep 0.2
        done
    done
}

stop_clients() { for p in "${client_pids[@]}"; do stop_pid "$p"; done; }

received_total() { cat "$1"/client-*.json 2>/dev/null | python3 -c 'import json,sys; print(sum(json.loads(l)["received"] for l in sys.stdin.read().replace("}{","}\n{").splitlines() if l.strip()))'; }

results=$work/results.txt
: >"$results"

echo "== idle: $idle SSE streams, then $idle WebSockets"
for kind in sse ws; do
    dir=$work/idle-$kind; mkdir -p "$dir"
    start_broker "$dir"
    sleep 2
    baseline=$(stable_rss_kb "$broker_pid")
    start_clients "$kind" "$idle" "$(( (idle + 4999) / 5000 ))" "$dir"
    loaded=$(stable_rss_kb "$broker_pid")
    held=$(ss -Htn state established "( src 127.0.0.1 and sport = :$http_port )" | wc -l)
    open_metric=$([[ $kind == sse ]] && metric iotrealtime_bridges_sse_streams || metric iotrealtime_bridges_websockets)
    stop_clients
    stop_pid "$broker_pid"
    per=$(awk -v l="$loaded" -v b="$baseline" -v n="$held" 'BEGIN { printf "%.2f", (l - b) / n }')
    printf 'idle %-4s held %6s (server counts %s)  baseline %7.1f MB  loaded %7.1f MB  %s KB/stream\n' "$kind" "$held" "$open_metric" \
        "$(awk -v v="$baseline" 'BEGIN{print v/1024}')" "$(awk -v v="$loaded" 'BEGIN{print v/1024}')" "$per" | tee -a "$results"
    sleep 3
done

echo "== fanout: $streams SSE streams on bench/#, rates $rates msg/s, $duration s each"
dir=$work/fanout; mkdir -p "$dir"
start_broker "$dir"
start_clients sse "$streams" "$shards" "$dir" --topic bench
for rate in $rates; do
    sleep 2
    before_clients=$(received_total "$dir")
    before_sent=$(metric 'iotrealtime_bridges_events_sent_total{transport="sse"}')
    before_cpu=$(cpu_ticks "$broker_pid")
    python3 "$work/client.py" publish --port "$mqtt_port" --rate "$rate" --duration "$duration" --topic bench/1 >"$dir/pub-$rate.log" 2>&1 &
    pub_pid=$!
    pids+=("$pub_pid")
    # the server's own count, sampled every 0.5 s: from the sample before the first event to the last one that moved,
    # until the publisher is done and the count has stood still for 2 s (bounded: 120 s)
    first_t=""; last_t=""; last_v=$before_sent; prev_t=$(date +%s.%N); still=0; deadline=$((SECONDS + 120))
    while (( SECONDS < deadline )); do
        sleep 0.5
        v=$(metric 'iotrealtime_bridges_events_sent_total{transport="sse"}'); t=$(date +%s.%N)
        if [[ $v != "$last_v" ]]; then
            [[ -n $first_t ]] || first_t=$prev_t
            last_t=$t; last_v=$v; still=0
        elif ! kill -0 "$pub_pid" 2>/dev/null; then
            still=$((still + 1))
        fi
        prev_t=$t
        (( still >= 4 )) && break
    done
    wait "$pub_pid" || true
    sleep 2
    after_clients=$(received_total "$dir")
    after_cpu=$(cpu_ticks "$broker_pid")
    published=$(awk '/^PUBLISHED/ { print $2 }' "$dir/pub-$rate.log")
    pub_seconds=$(awk '/^PUBLISHED/ { print $4 }' "$dir/pub-$rate.log")
    open=$(metric iotrealtime_bridges_sse_streams)
    overflow=$(curl -s "http://127.0.0.1:$http_port/metrics" | awk '$1 ~ /disconnects_total\{reason="sse-queue-overflow"\}/ { print $2 }')
    awk -v r="$rate" -v p="$published" -v ps="$pub_seconds" -v s="$streams" -v o="$open" -v rc=$((after_clients - before_clients)) -v sent=$((last_v - before_sent)) \
        -v t="$(awk -v a="${first_t:-0}" -v b="${last_t:-0}" 'BEGIN{print b-a}')" -v cpu=$((after_cpu - before_cpu)) -v tck="$ticks_per_second" -v ov="$overflow" \
        'BEGIN { printf "fanout %4d msg/s x %d streams: published %d in %.1f s; server sent %d of %d events in %.1f s = %.0f events/s (offered %.0f/s), broker cpu %.1f s (%.2f s per million); clients read %.1f%% so far; open %d, overflow-closed %s\n",
                 r, s, p, ps, sent, p * s, t, (t > 0 ? sent / t : 0), r * s, cpu / tck, (sent > 0 ? cpu / tck * 1e6 / sent : 0), (p * s > 0 ? 100 * rc / (p * s) : 0), o, ov }' | tee -a "$results"
done
stop_clients
stop_pid "$broker_pid"

out=$bench_out
{
    bench_header "Bridges: memory per idle stream, SSE fan-out"
    echo "# broker: iotrealtime-broker with bridges in-process, Store:Durability=None, SysInterval=0; clients: python3 asyncio, HTTP/1.1, sources 127.0.0.2+"
    echo
    cat "$results"
} >"$out"
bench_finish
echo
cat "$out"
echo "written to ${out#"$root"/}; logs in $work"
