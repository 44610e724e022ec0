# Shell helpers shared by scripts/bench.sh, scripts/bench-idle.sh and scripts/bench-durability.sh.
# Source it after setting bench_name (the prefix of every message) and root (the repository root):
#   bench_name=bench-idle; root=$PWD; . "$root/scripts/lib/bench-common.sh"
# Every wait is bounded in time; processes are stopped by PID.

# Exits 2 unless the value of option --NAME is a positive whole number.
bench_require_positive() {
    local name=$1 value=$2
    [[ $value =~ ^[1-9][0-9]*$ ]] || { echo "$bench_name: --$name must be a positive number (was '$value')" >&2; exit 2; }
}

# Sets the open-file limit for every process started from here to the hard limit, at most $1.
bench_limit_open_files() {
    local most=$1 hard
    hard=$(ulimit -Hn)
    ulimit -n "$([[ $hard == unlimited ]] && echo "$most" || echo "$((hard < most ? hard : most))")"
}

# Makes the work directory ($work, /tmp/$1.XXXXXX) and stops every PID in $pids when the script exits.
bench_init_work() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    pids=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}

# Builds the broker and the simulator (Release) into artifacts/bench; sets broker_dll and sim_dll.
bench_build() {
    echo "== build (Release)"
    dotnet build Broker/Host -c Release -o "$root/artifacts/bench/broker" --nologo -v q >"$work/build-broker.log" 2>&1 \
        || { tail -30 "$work/build-broker.log"; echo "$bench_name: broker build failed" >&2; exit 1; }
    dotnet build Device.Simulator -c Release -o "$root/artifacts/bench/sim" --nologo -v q >"$work/build-sim.log" 2>&1 \
        || { tail -30 "$work/build-sim.log"; echo "$bench_name: simulator build failed" >&2; exit 1; }
    broker_dll=$root/artifacts/bench/broker/iotrealtime-broker.dll
    sim_dll=$root/artifacts/bench/sim/iotrealtime-sim.dll
}

bench_ensure_mosquitto() {
    command -v mosquitto >/dev/null && return 0
    echo "== installing mosquitto"
    apt-get install -y mosquitto >"$work/apt.log" 2>&1 || { apt-get update >>"$work/apt.log" 2>&1 && apt-get install -y mosquitto >>"$work/apt.log" 2>&1; }
}

free_port() {
    local p
    for _ in $(seq 1 200); do
        # Below Linux's default ephemeral range (32768+), so no client socket can share the number.
        p=$((20000 + RANDOM % 12000))
        if [[ -z $(ss -Hltn "sport = :$p") && -z $(ss -Htan "sport = :$p") ]]; then echo "$p"; return 0; fi
    done
    echo "$bench_name: no free port found" >&2
    return 1
}

wait_listening() {
    local pid=$1 port=$2
    for _ in $(seq 1 300); do
        [[ -n $(ss -Hltn "sport = :$port") ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Waits for a broker started by bench_start_*; on failure shows its log and exits 1.
bench_wait_broker() {
    local name=$1 pid=$2 port=$3 dir=$4
    if ! wait_listening "$pid" "$port"; then
        tail -20 "$dir/broker.log"
        echo "$bench_name: $name did not start listening on $port" >&2
        exit 1
    fi
}

# Sends SIGTERM, waits up to 20 s, then SIGKILL.
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the name in field 2 has no spaces here).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
ticks_per_second=$(getconf CLK_TCK)

# Starts mosquitto on 127.0.0.1:PORT with DIR/mosquitto.conf (the listener, anonymous access, then each further
# argument as a line), logging to DIR/broker.log; prints its PID.
bench_start_mosquitto() {
    local port=$1 dir=$2
    shift 2
    { printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port"; for line in "$@"; do printf '%s\n' "$line"; done; } >"$dir/mosquitto.conf"
    mosquitto -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
    echo $!
}

# Starts our broker with MQTT on PORT, HTTP on a free port, no TLS listeners, and the further arguments (a fresh
# DIR/data is made for them to name), logging to DIR/broker.log; prints its PID.
bench_start_ours() {
    local port=$1 dir=$2 http_port
    shift 2
    http_port=$(free_port)
    mkdir -p "$dir/data"
    dotnet "$broker_dll" --mqtt-port "$port" --http-port "$http_port" --mqtts-port -1 --https-port -1 "$@" >"$dir/broker.log" 2>&1 &
    echo $!
}

# The median of the numbers on stdin, two decimals ("n/a" when none).
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) printf "%.2f", a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# The short commit, marked when the broker or the simulator has uncommitted changes.
bench_commit() { echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Broker Device.Simulator || echo ' (with uncommitted changes)')"; }

# Cores, memory, OS, .NET and mosquitto versions, for the "# machine:" line of a results file.
bench_machine() {
    local mosquitto_version
    # mosquitto -h exits non-zero after printing its version line.
    mosquitto_version=$( (command -v mosquitto >/dev/null && mosquitto -h 2>/dev/null || true) | head -1)
    echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), .NET $(dotnet --version), $mosquitto_version"
}
