# Shell helpers shared by the benchmark scripts (scripts/bench*.sh, scripts/soak.sh, scripts/conformance.sh).
# Source it after setting bench_name (the prefix of every message) and root (the repository root):
#   bench_name=bench-idle; root=$PWD; . "$root/scripts/lib/bench-common.sh"
# Every wait is bounded in time; processes are stopped by PID.
#
# What every script does with it, so that a reader can trust a results file:
#   bench_args "$@"            first thing, before parsing: records the command line, notes --allow-dirty
#   (parse options; accept --allow-dirty as a flag)
#   bench_check_tree           refuses a tree with uncommitted changes unless --allow-dirty; records git describe
#   bench_build_baseline REV   (scripts that take --baseline) builds revision REV of the broker beside ours
#   bench_results KIND         reserves docs/benchmarks/KIND-<UTC date and time>.txt, a new file per run
#   { bench_header "title"; ...; } >"$bench_out"   the results, headed by command, commit, machine, load averages
#   bench_finish               marks the run complete (a run that stops early leaves a note saying so)

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

# Records the command line (shell-quoted, as it could be typed again) and whether --allow-dirty is among the arguments.
bench_args() {
    bench_command="scripts/$(basename "$0")"
    local a
    for a in "$@"; do bench_command+=" $(printf '%q' "$a")"; done
    bench_allow_dirty=0
    for a in "$@"; do [[ $a == --allow-dirty ]] && bench_allow_dirty=1; done
    bench_load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    bench_started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    return 0
}

# Sets bench_describe (git describe --always --dirty) and bench_changes (uncommitted changes, untracked files
# included, except new results under docs/benchmarks/, which earlier runs leave for committing). With changes and
# no --allow-dirty, exits 2 naming them: figures must come from code a reader can check out.
bench_check_tree() {
    bench_describe=$(git -C "$root" describe --always --dirty)
    bench_changes=$(git -C "$root" status --porcelain --untracked-files=all | grep -vE '^\?\? docs/benchmarks/' || true)
    [[ -z $bench_changes ]] && return 0
    if (( bench_allow_dirty )); then
        echo "$bench_name: WARNING: running on a tree with uncommitted changes (--allow-dirty); the results file says so" >&2
        return 0
    fi
    echo "$bench_name: the working tree has uncommitted changes; commit them, or pass --allow-dirty (the results file will say so):" >&2
    sed 's/^/    /' <<<"$bench_changes" >&2
    exit 2
}

# Reserves a results file of its own for this run: docs/benchmarks/KIND-<UTC date>T<time>Z.txt (with -2, -3 ... if
# that name is taken), never an earlier run's file. Sets bench_out. The file says the run is incomplete until
# bench_finish; a run that stops early keeps that note and its exit code.
bench_results() {
    local kind=$1 stamp n=1 candidate
    stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
    mkdir -p "$root/docs/benchmarks"
    candidate=$root/docs/benchmarks/$kind-$stamp.txt
    while ! (set -o noclobber; printf '# %s run started %s; incomplete (the script did not finish)\n' "$bench_command" "$bench_started" >"$candidate") 2>/dev/null; do
        n=$((n + 1))
        (( n < 100 )) || { echo "$bench_name: cannot create a results file for $kind-$stamp" >&2; exit 1; }
        candidate=$root/docs/benchmarks/$kind-$stamp-$n.txt
    done
    bench_out=$candidate
    bench_finished=0
}

# The head of every results file: a loud warning for a dirty tree, then command, commit, machine, times and load averages.
bench_header() {
    local title=$1
    if [[ -n ${bench_changes:-} ]]; then
        echo "# !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "# !!! DIRTY TREE: run with --allow-dirty; these figures come from code with uncommitted changes:"
        sed 's/^/# !!!   /' <<<"$bench_changes"
        echo "# !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    fi
    echo "# $title"
    echo "# command: $bench_command"
    echo "# commit: ${bench_describe:-unknown} (git describe --always --dirty, taken before the build)"
    if [[ -n ${baseline_name:-} ]]; then
        echo "# baseline: $baseline_name is revision $baseline_commit (git describe --always: $baseline_describe), built Release in a"
        echo "#   worktree of its own and run with the same arguments as ours; after/before = ours / $baseline_name"
    fi
    echo "# machine: $(bench_machine)"
    echo "# started: $bench_started, load average (1/5/15 min) $bench_load_start"
    echo "# ended:   $(date -u +%Y-%m-%dT%H:%M:%SZ), load average (1/5/15 min) $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_finish() {
    bench_finished=1
}

# Makes the work directory ($work, /tmp/$1.XXXXXX) and stops every PID in $pids when the script exits.
bench_init_work() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    pids=()
    trap bench_cleanup EXIT
    # Ctrl-C and kill end the script through its EXIT trap, so what it started is stopped.
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
bench_cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    bench_remove_baseline
    if [[ -n ${bench_out:-} && ${bench_finished:-0} != 1 && -f $bench_out ]]; then
        printf '# ended %s with exit code %s before the results were complete; logs were in %s\n' \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$rc" "${work:-?}" >>"$bench_out"
    fi
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

# Names revision $1 as the baseline: sets baseline_commit, baseline_describe (git describe --always) and
# baseline_name (ours@<short rev>, its name in the results); exits 2 if it is not a commit of this repository.
bench_baseline_names() {
    local rev=$1
    baseline_commit=$(git -C "$root" rev-parse --verify --quiet "$rev^{commit}") \
        || { echo "$bench_name: --baseline: '$rev' is not a commit of this repository" >&2; exit 2; }
    baseline_describe=$(git -C "$root" describe --always "$baseline_commit")
    baseline_name=ours@$(git -C "$root" rev-parse --short "$baseline_commit")
}

# Builds revision $1 of the broker (Release) in a detached worktree under $work, so that neither its sources nor its
# bin/obj touch ours; the worktree is removed when the script exits. Sets baseline_dll and the names above.
bench_build_baseline() {
    bench_baseline_names "$1"
    echo "== build baseline $baseline_name ($baseline_describe, Release)"
    baseline_src=$work/baseline-src
    timeout 120 git -C "$root" worktree add --detach "$baseline_src" "$baseline_commit" >"$work/baseline-worktree.log" 2>&1 \
        || { cat "$work/baseline-worktree.log"; echo "$bench_name: cannot check out $baseline_name" >&2; exit 1; }
    timeout 1200 dotnet build "$baseline_src/Broker/Host" -c Release -o "$baseline_src/artifacts/bench/broker" --nologo -v q \
        >"$work/build-baseline.log" 2>&1 \
        || { tail -30 "$work/build-baseline.log"; echo "$bench_name: baseline broker build failed (or took over 20 min)" >&2; exit 1; }
    baseline_dll=$baseline_src/artifacts/bench/broker/iotrealtime-broker.dll
    [[ -f $baseline_dll ]] || { echo "$bench_name: the baseline build made no $baseline_dll" >&2; exit 1; }
}

# Removes the worktree bench_build_baseline made (its build output with it); the EXIT trap calls it.
bench_remove_baseline() {
    [[ -n ${baseline_src:-} && -e $baseline_src ]] || return 0
    timeout 60 git -C "$root" worktree remove --force "$baseline_src" >/dev/null 2>&1 \
        || { rm -rf "$baseline_src"; timeout 60 git -C "$root" worktree prune >/dev/null 2>&1 || true; }
}

# The brokers of run $1 in order, from the rest of the arguments, with the baseline (if any) right after ours; on
# even runs the baseline goes before ours, so that neither always runs first.
bench_run_order() {
    local run=$1 b
    shift
    local list=("$@")
    if [[ -n ${baseline_name:-} ]]; then
        list=()
        for b in "$@"; do
            if [[ $b == ours ]]; then
                if (( run % 2 )); then list+=(ours "$baseline_name"); else list+=("$baseline_name" ours); fi
            else
                list+=("$b")
            fi
        done
        [[ " $* " == *" ours "* ]] || list+=("$baseline_name")
    fi
    echo "${list[*]}"
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

# The lines every mosquitto run here starts with (after its listener): anonymous access, and Nagle off on client
# sockets as our broker has it (mosquitto's default leaves it on, which delays small writes such as PUBACKs).
bench_mosquitto_base=("allow_anonymous true" "set_tcp_nodelay true")

# Starts mosquitto on 127.0.0.1:PORT with DIR/mosquitto.conf (the listener, bench_mosquitto_base, then each further
# argument as a line), logging to DIR/broker.log; prints its PID.
bench_start_mosquitto() {
    local port=$1 dir=$2
    shift 2
    { printf 'listener %s 127.0.0.1\n' "$port"; for line in "${bench_mosquitto_base[@]}" "$@"; do printf '%s\n' "$line"; done; } >"$dir/mosquitto.conf"
    mosquitto -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
    echo $!
}

# Starts our broker with MQTT on PORT, HTTP on a free port, no TLS listeners, and the further arguments (a fresh
# DIR/data is made for them to name), logging to DIR/broker.log; prints its PID.
bench_start_ours() {
    bench_start_dll "$broker_dll" "$@"
}

# bench_start_ours with the broker built at DLL (the baseline's, for one).
bench_start_dll() {
    local dll=$1 port=$2 dir=$3 http_port
    shift 3
    # PORT is not listened on yet, so free_port could hand it out again.
    http_port=$(free_port)
    while [[ $http_port == "$port" ]]; do http_port=$(free_port); done
    mkdir -p "$dir/data"
    dotnet "$dll" --mqtt-port "$port" --http-port "$http_port" --mqtts-port -1 --https-port -1 "$@" >"$dir/broker.log" 2>&1 &
    echo $!
}

# The median of the numbers on stdin, two decimals ("n/a" when none).
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) printf "%.2f", a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Cores, memory, OS, .NET and mosquitto versions, for the "# machine:" line of a results file.
bench_machine() {
    local mosquitto_version
    # mosquitto -h exits non-zero after printing its version line.
    mosquitto_version=$( (command -v mosquitto >/dev/null && mosquitto -h 2>/dev/null || true) | head -1)
    echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), .NET $(dotnet --version), $mosquitto_version"
}
