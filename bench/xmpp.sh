#!/usr/bin/env bash
# XMPP c2s benchmark: cusaxd, Prosody and ejabberd in the same run.
#
#   bench/xmpp.sh [--servers cusaxd,prosody,ejabberd] [--users N] [--idle-connections K]
#                 [--pairs P] [--login-workers W] [--login-users U] [--login-seconds S]
#                 [--msg-seconds S] [--latency-rate R] [--mechanism SCRAM-SHA-1|SCRAM-SHA-256]
#                 [--port P] [--out FILE] [--no-build] [--build-timeout SEC]
#                 [--idle-wait SEC] [--keep]
#                 [--cusaxd-bin PATH --cusaxctl-bin PATH] [--loader-bin PATH]  (imply --no-build)
#
# Every server runs plain TCP (no STARTTLS) on 127.0.0.1, pinned to CPU 0 (taskset -c 0);
# the loader bench/xmpp-load runs on CPU 1. For each server: start it with an empty data
# directory, create N accounts (default 10000: cusaxctl user import for cusaxd, XEP-0077
# in-band registration for Prosody and ejabberd), then for every test restart it (so each
# test sees a freshly started server) and measure:
#   logins    W workers (default 50) doing connect -> SCRAM-SHA-1 -> bind -> close over U
#             accounts (default 1000) for S s (default 10): logins/s, p50/p99 login latency
#   idle      K authenticated, bound connections (default 10000): server VmRSS before and
#             after, from /proc/PID/status -> KiB of RSS per idle connection
#   messages  P pairs (default 500 = 1000 sessions) bouncing chat messages for S s (closed
#             loop: saturated messages/s, with latency) and again at a fixed R messages/s
#             (open loop, default 2000/s: p50/p99 one-way latency at equal load)
# A table compares cusaxd with each other server against the targets (logins/s and
# messages/s >= 2x Prosody and >= 1.25x ejabberd; RSS per idle connection <= half the
# better of the two; p99 <= the better of the two) and --out gets a JSON summary.
#
# Before each test the script waits (at most --idle-wait s, default 120) for both cores to
# be idle and records the load average. A server that cannot be built, started or given
# its accounts is reported and skipped; every step is bounded by a timeout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

servers="cusaxd,prosody,ejabberd"
users=10000
idle_conns=10000
pairs=500
login_workers=50
login_users=1000
login_s=10
msg_s=10
latency_rate=2000
mechanism=SCRAM-SHA-1
port=25222
out=""
build=1
build_timeout=3600
idle_wait=120
keep=0
domain=bench.local
cusaxd_bin="" cusaxctl_bin="" loader_bin=""

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --servers) servers=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --idle-connections) idle_conns=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --login-workers) login_workers=$2; shift 2 ;;
    --login-users) login_users=$2; shift 2 ;;
    --login-seconds) login_s=$2; shift 2 ;;
    --msg-seconds) msg_s=$2; shift 2 ;;
    --latency-rate) latency_rate=$2; shift 2 ;;
    --mechanism) mechanism=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --build-timeout) build_timeout=$2; shift 2 ;;
    --idle-wait) idle_wait=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --cusaxd-bin) cusaxd_bin=$2; build=0; shift 2 ;;
    --cusaxctl-bin) cusaxctl_bin=$2; build=0; shift 2 ;;
    --loader-bin) loader_bin=$2; build=0; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
for b in taskset timeout jq awk; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y util-linux coreutils jq gawk)" >&2; exit 1; }
done
(($(nproc --all) >= 2)) || { echo "needs 2 CPUs (server on CPU 0, loader on CPU 1)" >&2; exit 1; }
((idle_conns <= users && 2 * pairs <= users && login_users <= users)) \
  || { echo "--users must cover --idle-connections, 2 x --pairs and --login-users" >&2; exit 2; }
hz=$(getconf CLK_TCK)

target_dir=${CARGO_TARGET_DIR:-$root/target}
cusaxd_bin=${cusaxd_bin:-$target_dir/release/cusaxd}
cusaxctl_bin=${cusaxctl_bin:-$target_dir/release/cusaxctl}
loader_bin=${loader_bin:-$target_dir/release/xmpp-load}

tmp=$(mktemp -d)
started_pids=()
cleanup() {
  local p
  for p in "${started_pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  if ((keep)); then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- helpers

# VmRSS of a process in KiB
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# CPU ticks (utime+stime, all threads) of one process
ticks() { { cat "/proc/$1/stat" 2>/dev/null || echo "0 (x) S 0 0 0 0 0 0 0 0 0 0 0 0"; } | sed 's/^.*) //' | awk '{ print $12 + $13 }'; }

cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# wait_idle SECONDS: wait (bounded) until both cores are nearly idle
wait_idle() {
  local limit=$1 t0 a0 a1 b0 b1
  t0=$(date +%s)
  while :; do
    a0=$(cpu_busy 0); b0=$(cpu_busy 1); sleep 2; a1=$(cpu_busy 0); b1=$(cpu_busy 1)
    if (((a1 - a0) * 100 / (2 * hz) < 10 && (b1 - b0) * 100 / (2 * hz) < 10)); then return 0; fi
    if (($(date +%s) - t0 >= limit)); then
      log "warning: cores still busy after ${limit}s (cpu0 $(((a1 - a0) * 100 / (2 * hz)))%, cpu1 $(((b1 - b0) * 100 / (2 * hz)))%, load $(loadavg)); measuring anyway"
      return 1
    fi
  done
}

# wait_port PORT SECONDS PID: 0 once something accepts TCP on 127.0.0.1:PORT
wait_port() {
  local p=$1 deadline=$2 pid=$3 t0
  t0=$(date +%s)
  while (($(date +%s) - t0 < deadline)); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.3
  done
  return 1
}

stop_pid() {
  local p=$1
  [[ -n $p ]] || return 0
  kill "$p" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# loader NAME SECONDS MODE ARGS... -> JSON line on stdout; human line and errors to the log
loader() {
  local name=$1 limit=$2
  shift 2
  (
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    exec timeout -k 5 "$limit" taskset -c 1 "$loader_bin" --port "$sport" --domain "$domain" \
      --users "$tmp/users.csv" --mechanism "$mechanism" --label "$name" --max-time "$limit" "$@"
  ) 2>>"$tmp/$name/loader.log" | tail -1 || true
}

# ------------------------------------------------------------ building
built=""
build_all() {
  [[ -n $built ]] && { [[ $built == ok ]]; return; }
  if ((build)); then
    command -v cargo >/dev/null || { built="cargo not found"; return 1; }
    local pkgs=(-p cusax-xmpp-load)
    [[ ,$servers, == *,cusaxd,* ]] && pkgs+=(-p cusaxd -p cusaxctl)
    log "cargo build --release ${pkgs[*]} (bounded ${build_timeout}s)"
    if ! (cd "$root" && timeout "$build_timeout" cargo build --release "${pkgs[@]}") >"$tmp/cargo-build.log" 2>&1; then
      built="build failed (tail: $(tail -1 "$tmp/cargo-build.log" | tr -d '"\\' | cut -c1-120))"
      return 1
    fi
  fi
  built=ok
}

# ------------------------------------------------------------ servers
# start_SERVER: start (fresh process) on $sport; sets srv_pid (the process to measure and
# stop), or returns 1 with srv_error. setup_SERVER: once, before the first start.

setup_cusaxd() {
  local d="$tmp/cusaxd"
  mkdir -p "$d/data"
  if [[ ! -x $cusaxd_bin || ! -x $cusaxctl_bin ]]; then srv_error="cusaxd or cusaxctl not built"; return 1; fi
  # Plain TCP for the benchmark; idle connections send nothing, so no idle timeout within
  # the test; no direct-TLS port needed; SIP over TLS on any free port (5061 may be taken).
  cat >"$d/cusaxd.toml" <<EOF
[server]
domains = ["$domain"]
bind = "127.0.0.1"

[sip]
tls_port = 0

[xmpp]
port = $sport
tls_port = 0
dangerous_allow_plain = true
idle_timeout_secs = 86400
EOF
  if ! "$cusaxd_bin" check-config --config "$d/cusaxd.toml" --data-dir "$d/data" >"$d/check.log" 2>&1; then
    srv_error="cusaxd check-config failed: $(tail -1 "$d/check.log" | tr -d '"\\' | cut -c1-160)"
    return 1
  fi
  local t0; t0=$(date +%s)
  # rows of a domain the store does not serve yet are skipped: add it first
  if ! "$cusaxctl_bin" --data-dir "$d/data" domain add "$domain" >"$d/domain.log" 2>&1; then
    srv_error="cusaxctl domain add failed: $(tail -1 "$d/domain.log" | tr -d '"\\' | cut -c1-120)"
    return 1
  fi
  if ! timeout 600 "$cusaxctl_bin" --data-dir "$d/data" user import "$tmp/users.csv" >"$d/import.log" 2>&1; then
    srv_error="cusaxctl user import failed: $(tail -1 "$d/import.log" | tr -d '"\\' | cut -c1-120)"
    return 1
  fi
  accounts_created=$(awk '/^imported/ { print $2 + 0 }' "$d/import.log" | tail -1)
  accounts_created=${accounts_created:-0}
  if ((accounts_created == 0)); then
    srv_error="cusaxctl user import created no account: $(tail -1 "$d/import.log" | tr -d '"\\' | cut -c1-120)"
    return 1
  fi
  log "cusaxd: imported $accounts_created accounts in $(($(date +%s) - t0))s"

  return 0
}
start_cusaxd() {
  local d="$tmp/cusaxd"
  rm -f "$d/ready.json"
  # A fixed SIP port below the ephemeral range: with port 0 the TCP listener takes the
  # number the UDP socket got, which a loader connection may already be using.
  (
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    export RUST_LOG=error
    exec taskset -c 0 "$cusaxd_bin" serve --config "$d/cusaxd.toml" --data-dir "$d/data" --domain "$domain" \
      --bind 127.0.0.1 --sip-port "$((sport + 5))" --xmpp-port "$sport" --http-port 0 --ready-file "$d/ready.json"
  ) >>"$d/server.log" 2>&1 &
  srv_pid=$!
  started_pids+=("$srv_pid")
}

setup_prosody() {
  command -v prosody >/dev/null || { srv_error="prosody not installed (apt-get install -y prosody)"; return 1; }
  mkdir -p "$tmp/prosody/data"
}
start_prosody() {
  local d="$tmp/prosody"
  (
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    export BENCH_PROSODY_PORT=$sport BENCH_PROSODY_DATA=$d/data BENCH_DOMAIN=$domain
    exec taskset -c 0 prosody --config "$here/prosody/prosody.cfg.lua"
  ) >>"$d/server.log" 2>&1 &
  srv_pid=$!
  started_pids+=("$srv_pid")
}

ej_wrapper=""
setup_ejabberd() {
  local d="$tmp/ejabberd"
  command -v erl >/dev/null && ls -d /usr/lib/*/ejabberd-[0-9]* >/dev/null 2>&1 \
    || { srv_error="ejabberd not installed (apt-get install -y ejabberd)"; return 1; }
  mkdir -p "$d/spool" "$d/log"
  sed -e "s/@PORT@/$sport/" -e "s/@DOMAIN@/$domain/" "$here/ejabberd/ejabberd.yml" >"$d/ejabberd.yml"
}
start_ejabberd() {
  local d="$tmp/ejabberd" lib
  lib=$(dirname "$(ls -d /usr/lib/*/ejabberd-[0-9]* | head -1)")
  # Run the VM directly as the current user, without Erlang distribution (no node name, no
  # epmd): accounts are created over XMPP, so ejabberdctl is not needed.
  (
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    export ERL_LIBS=$lib EJABBERD_CONFIG_PATH=$d/ejabberd.yml EJABBERD_LOG_PATH=$d/log/ejabberd.log \
      ERL_CRASH_DUMP=$d/log/erl_crash.dump ERL_MAX_PORTS=65536 HOME=$d
    cd "$d"
    exec taskset -c 0 erl -noinput -noshell +P 1000000 -mnesia dir "\"$d/spool\"" -s ejabberd
  ) >>"$d/server.log" 2>&1 &
  ej_wrapper=$!
  started_pids+=("$ej_wrapper")
  # erl execs the VM (same PID) or, in some versions, stays its parent: measure and stop
  # the VM itself
  srv_pid=""
  for _ in $(seq 50); do
    if [[ $(cat "/proc/$ej_wrapper/comm" 2>/dev/null) == beam* ]]; then
      srv_pid=$ej_wrapper
    else
      srv_pid=$(pgrep -P "$ej_wrapper" beam.smp 2>/dev/null | head -1 || true)
    fi
    [[ -n $srv_pid ]] && break
    kill -0 "$ej_wrapper" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $srv_pid ]]; then srv_error="ejabberd VM did not start"; return 1; fi
  if [[ $srv_pid == "$ej_wrapper" ]]; then ej_wrapper=""; else started_pids+=("$srv_pid"); fi
}

stop_server() {
  stop_pid "$srv_pid"
  if [[ -n $ej_wrapper ]]; then stop_pid "$ej_wrapper"; ej_wrapper=""; fi
  srv_pid=""
}

# restart NAME: stop the running instance, start a fresh one, wait for the port
restart() {
  local s=$1
  stop_server
  srv_error=""
  "start_$s" || return 1
  if ! wait_port "$sport" 60 "$srv_pid"; then
    srv_error="no c2s listener on port $sport within 60 s (log: $(tail -2 "$tmp/$s/server.log" 2>/dev/null | tr '\n' ' ' | tr -d '"\\' | cut -c1-200))"
    stop_server
    return 1
  fi
  sleep 1
}

# ---------------------------------------------------------------- tests
# Each sets R_* entries and appends to the server's JSON object.

# other_load TEST SERVER_TICKS_DELTA LOADER_JSON WALL_MS: busy % of CPU 0 not used by the server
# and of CPU 1 not used by the loader (from /proc/stat sampled by the caller in b00/b10)
other_load() {
  local t=$1 sd=$2 j=$3 w=$4 b01 b11 lt
  b01=$(cpu_busy 0); b11=$(cpu_busy 1)
  lt=$(jq '.loader_cpu_s // 0' <<<"${j:-null}" 2>/dev/null || echo 0)
  R_other["$s/$t"]=$(awk -v a="$b00" -v b="$b01" -v c="$b10" -v d="$b11" -v sd="$sd" -v lt="${lt:-0}" -v w="$w" -v hz="$hz" '
    BEGIN { x = (b - a - sd) * 100000 / hz / w; y = ((d - c) - lt * hz) * 100000 / hz / w
            if (x < 0) x = 0; if (y < 0) y = 0; printf "%.0f/%.0f", x, y }')
  if awk -v v="${R_other["$s/$t"]}" 'BEGIN { split(v, a, "/"); exit !(a[1] > 10 || a[2] > 10) }'; then
    R_contended[$s]+="${R_contended[$s]:+, }$t (other load cpu0/cpu1 ${R_other["$s/$t"]} %)"
  fi
}

test_logins() {
  local s=$1 j c0 c1 t0 t1
  c0=$(ticks "$srv_pid"); t0=$(date +%s%3N); b00=$(cpu_busy 0); b10=$(cpu_busy 1)
  j=$(loader "$s" $((login_s + 200)) logins --workers "$login_workers" --login-users "$login_users" --duration "$login_s")
  c1=$(ticks "$srv_pid"); t1=$(date +%s%3N)
  other_load logins $((c1 - c0)) "$j" $((t1 - t0))
  J_logins[$s]=${j:-null}
  if [[ -z $j ]] || jq -e 'has("error")' <<<"$j" >/dev/null; then
    R_logins[$s]=""
    log "$s: logins failed: $(jq -r '.error // "no result"' <<<"${j:-null}")"
    return 1
  fi
  R_logins[$s]=$(jq '.logins_per_s' <<<"$j")
  R_login_p50[$s]=$(jq '.latency.p50_ms' <<<"$j")
  R_login_p99[$s]=$(jq '.latency.p99_ms' <<<"$j")
  R_login_cpu[$s]=$(awk -v a="$c0" -v b="$c1" -v w=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.0f", (b - a) * 100000 / hz / w }')
}

test_idle() {
  local s=$1 k=$2 ready="$tmp/$s/idle.ready" lpid before after j t0
  rm -f "$ready"
  before=$(rss_kb "$srv_pid")
  (
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    exec timeout -k 5 900 taskset -c 1 "$loader_bin" --port "$sport" --domain "$domain" \
      --users "$tmp/users.csv" --mechanism "$mechanism" --label "$s" --max-time 900 \
      idle --connections "$k" --concurrency 100 --open-timeout 600 --hold 600 --ready-file "$ready"
  ) >"$tmp/$s/idle.json" 2>>"$tmp/$s/loader.log" &
  lpid=$!
  started_pids+=("$lpid")
  t0=$(date +%s)
  while [[ ! -s $ready ]] && kill -0 "$lpid" 2>/dev/null && (($(date +%s) - t0 < 700)); do sleep 0.5; done
  if [[ ! -s $ready ]]; then
    stop_pid "$lpid"
    J_idle[$s]=$(tail -1 "$tmp/$s/idle.json" 2>/dev/null || true)
    J_idle[$s]=${J_idle[$s]:-null}
    log "$s: idle connections failed: $(jq -r '.error // "no result"' <<<"${J_idle[$s]}" 2>/dev/null)"
    return 1
  fi
  # let the server finish the last sessions' work and settle its allocator
  sleep 3
  after=$(rss_kb "$srv_pid")
  stop_pid "$lpid"
  j=$(tail -1 "$tmp/$s/idle.json")
  J_idle[$s]=${j:-null}
  local est
  est=$(jq '.established // 0' <<<"${j:-null}" 2>/dev/null || echo 0)
  ((est > 0)) || est=$(jq '.established // 0' "$ready")
  R_idle_conns[$s]=$est R_rss_before[$s]=$before R_rss_after[$s]=$after
  R_rss_per_conn[$s]=$(awk -v a="$before" -v b="$after" -v n="$est" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / n; else print "" }')
}

test_messages() {
  local s=$1 rate=$2 j c0 c1 t0 t1
  c0=$(ticks "$srv_pid"); t0=$(date +%s%3N); b00=$(cpu_busy 0); b10=$(cpu_busy 1)
  j=$(loader "$s" $((msg_s + 300)) pingpong --pairs "$pairs" --duration "$msg_s" --warmup 2 --rate "$rate")
  c1=$(ticks "$srv_pid"); t1=$(date +%s%3N)
  if ((rate == 0)); then other_load messages $((c1 - c0)) "$j" $((t1 - t0)); else other_load latency $((c1 - c0)) "$j" $((t1 - t0)); fi
  if [[ -z $j ]] || jq -e 'has("error")' <<<"$j" >/dev/null; then
    log "$s: messages (rate $rate) failed: $(jq -r '.error // "no result"' <<<"${j:-null}")"
    if ((rate == 0)); then J_msgs[$s]=${j:-null}; else J_lat[$s]=${j:-null}; fi
    return 1
  fi
  local cpu
  cpu=$(awk -v a="$c0" -v b="$c1" -v w=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.0f", (b - a) * 100000 / hz / w }')
  if ((rate == 0)); then
    J_msgs[$s]=$j
    R_msgs[$s]=$(jq '.msgs_per_s' <<<"$j")
    R_msg_p50[$s]=$(jq '.latency.p50_ms' <<<"$j")
    R_msg_p99[$s]=$(jq '.latency.p99_ms' <<<"$j")
    R_msg_cpu[$s]=$cpu
    R_msg_loader[$s]=$(jq '.loader_cpu_pct_measured // empty | floor' <<<"$j")
  else
    J_lat[$s]=$j
    R_lat_p50[$s]=$(jq '.latency.p50_ms' <<<"$j")
    R_lat_p99[$s]=$(jq '.latency.p99_ms' <<<"$j")
    R_lat_rate[$s]=$(jq '.msgs_per_s' <<<"$j")
  fi
}

# ---------------------------------------------------------------- main
log "servers: $servers; accounts: $users; idle: $idle_conns; pairs: $pairs; plain TCP, $mechanism; tmp: $tmp"
awk -v n="$users" -v d="$domain" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d@%s,pw-%d\n", i, d, i }' >"$tmp/users.csv"
if ! build_all; then
  log "build: $built"
  [[ -x $loader_bin ]] || { echo "xmpp-load is not built ($built)" >&2; exit 1; }
fi
[[ -x $loader_bin ]] || { echo "missing $loader_bin (cargo build --release -p cusax-xmpp-load)" >&2; exit 1; }

declare -A R_status R_accounts R_load R_logins R_login_p50 R_login_p99 R_login_cpu \
  R_idle_conns R_rss_before R_rss_after R_rss_per_conn R_msgs R_msg_p50 R_msg_p99 R_msg_cpu \
  R_lat_p50 R_lat_p99 R_lat_rate R_msg_loader R_other R_contended J_logins J_idle J_msgs J_lat
IFS=',' read -r -a server_list <<<"$servers"
i=0
for s in "${server_list[@]}"; do
  sport=$((port + 10 * i)); i=$((i + 1))
  srv_pid="" srv_error="" accounts_created=0 loads="" tests_failed=""
  mkdir -p "$tmp/$s"
  case $s in cusaxd|prosody|ejabberd) ;; *) R_status[$s]="skipped: unknown server"; continue ;; esac
  log "$s: setting up on 127.0.0.1:$sport (CPU 0)"
  if ! "setup_$s"; then log "$s: skipped: $srv_error"; R_status[$s]="skipped: $srv_error"; continue; fi
  if ! restart "$s"; then log "$s: skipped: $srv_error"; R_status[$s]="skipped: $srv_error"; continue; fi
  if [[ $s != cusaxd ]]; then
    log "$s: registering $users accounts (XEP-0077, bounded 600 s)"
    j=$(loader "$s" 660 register --concurrency 32 --duration 600)
    accounts_created=$(jq '(.created // 0) + (.existed // 0)' <<<"${j:-null}" 2>/dev/null || echo 0)
    log "$s: $(jq -r 'if . == null then "no result" elif .error then "registration failed: " + .error else "\(.created) accounts in \(.seconds)s" end' <<<"${j:-null}")"
    if ((accounts_created == 0)); then
      R_status[$s]="skipped: account creation failed"; stop_server; continue
    fi
  fi
  R_accounts[$s]=$accounts_created
  k=$idle_conns
  if ((accounts_created < k)); then
    log "$s: only $accounts_created accounts: idle test with $accounts_created connections"
    k=$accounts_created
  fi

  for t in logins idle messages latency; do
    [[ $t == latency ]] && ((latency_rate == 0)) && continue
    if ! restart "$s"; then log "$s: $t: $srv_error"; continue; fi
    wait_idle "$idle_wait" || true
    loads+="${loads:+,}\"$t\":\"$(loadavg)\""
    log "$s: $t (server pid $srv_pid, load $(loadavg))"
    case $t in
      logins)
        if ! test_logins "$s"; then
          # the other tests log in the same way: do not repeat a refusal three times
          if jq -e '.error | test("no login succeeded")' <<<"${J_logins[$s]:-null}" >/dev/null 2>&1; then
            tests_failed="logins refused: $(jq -r '.error' <<<"${J_logins[$s]}" | tr -d '"\\' | cut -c1-160)"
            break
          fi
        fi
        ;;
      idle) test_idle "$s" "$k" || true ;;
      messages) test_messages "$s" 0 || true ;;
      latency) test_messages "$s" "$latency_rate" || true ;;
    esac
    kill -0 "$srv_pid" 2>/dev/null || log "$s: server died during $t (log: $(tail -2 "$tmp/$s/server.log" | tr '\n' ' ' | cut -c1-200))"
  done
  stop_server
  if [[ -n $tests_failed ]]; then
    R_status[$s]="failed: $tests_failed"
    sed 's/^/    /' "$tmp/$s/loader.log" >&2 || true
    continue
  fi
  R_status[$s]=ok R_load[$s]="{$loads}"
  sed 's/^/    /' "$tmp/$s/loader.log" >&2 || true
done

# ---------------------------------------------------------------- report
ratio() { # a/b, or empty
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || a == "null" || b == "null" || b + 0 <= 0) print ""; else printf "%.2f", a / b }'
}
fmt() { [[ -n ${1:-} && ${1:-} != null ]] && printf '%s' "$1" || printf 'n/a'; }
# better (higher or lower) of prosody and ejabberd
best_of() { # best_of max|min VALUE1 VALUE2
  awk -v m="$1" -v a="${2:-}" -v b="${3:-}" 'BEGIN {
    if (a == "" || a == "null") a = ""; if (b == "" || b == "null") b = ""
    if (a == "" && b == "") { print ""; exit }
    if (a == "") { print b; exit } if (b == "") { print a; exit }
    if (m == "max") print (a + 0 > b + 0 ? a : b); else print (a + 0 < b + 0 ? a : b) }'
}
verdict() { # verdict ge|le VALUE LIMIT
  awk -v op="$1" -v v="${2:-}" -v l="${3:-}" 'BEGIN {
    if (v == "" || l == "" || v == "null" || l == "null") { print "n/a"; exit }
    ok = (op == "ge") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print (ok ? "met" : "MISSED") }'
}

echo
echo "XMPP c2s, plain TCP (no TLS), $mechanism, server on CPU 0, loader on CPU 1, $users accounts"
printf '%-9s %-10s %11s %16s %13s %12s %17s %17s\n' server status "logins/s" "login p50/p99" "RSS/idle conn" "msgs/s" "sat. p50/p99" "@${latency_rate}/s p50/p99"
for s in "${server_list[@]}"; do
  st=${R_status[$s]:-skipped}
  if [[ $st != ok ]]; then printf '%-9s %s\n' "$s" "$st"; continue; fi
  printf '%-9s %-10s %11s %16s %13s %12s %17s %17s\n' "$s" ok "$(fmt "${R_logins[$s]:-}")" \
    "$(fmt "${R_login_p50[$s]:-}")/$(fmt "${R_login_p99[$s]:-}") ms" \
    "$(fmt "${R_rss_per_conn[$s]:-}") KiB" "$(fmt "${R_msgs[$s]:-}")" \
    "$(fmt "${R_msg_p50[$s]:-}")/$(fmt "${R_msg_p99[$s]:-}") ms" \
    "$(fmt "${R_lat_p50[$s]:-}")/$(fmt "${R_lat_p99[$s]:-}") ms"
done
for s in "${server_list[@]}"; do
  [[ ${R_status[$s]:-} == ok ]] || continue
  note=""
  [[ -n ${R_msg_loader[$s]:-} ]] && ((R_msg_loader[$s] >= 90)) && note=" (loader-bound: msgs/s is a lower bound)"
  printf '  %-9s server CPU: logins %s%%, messages %s%%, loader CPU during messages %s%%%s; idle RSS %s -> %s KiB with %s connections; load at each test %s\n' \
    "$s" "$(fmt "${R_login_cpu[$s]:-}")" "$(fmt "${R_msg_cpu[$s]:-}")" "$(fmt "${R_msg_loader[$s]:-}")" "$note" "$(fmt "${R_rss_before[$s]:-}")" \
    "$(fmt "${R_rss_after[$s]:-}")" "$(fmt "${R_idle_conns[$s]:-}")" "${R_load[$s]}"
  [[ -n ${R_contended[$s]:-} ]] && printf '  %-9s CONTENDED (numbers unreliable): %s\n' "$s" "${R_contended[$s]}"
done

c=cusaxd p=prosody e=ejabberd
# p99 target on the fixed-rate run when there is one (equal load for all), else saturated
p99_of() { if ((latency_rate > 0)); then printf '%s' "${R_lat_p99[$1]:-}"; else printf '%s' "${R_msg_p99[$1]:-}"; fi; }
targets_json=""
if [[ ${R_status[$c]:-} == ok ]]; then
  echo
  echo "cusaxd against the targets:"
  printf '  %-22s %10s %12s %12s %26s %8s\n' metric cusaxd "/prosody" "/ejabberd" target result
  row() { # name cusaxd_value p_value e_value target_text limit op
    local rp re v
    rp=$(ratio "$2" "$3"); re=$(ratio "$2" "$4"); v=$(verdict "$7" "$2" "$6")
    printf '  %-22s %10s %12s %12s %26s %8s\n' "$1" "$(fmt "$2")" "x$(fmt "$rp")" "x$(fmt "$re")" "$5" "$v"
    targets_json+="${targets_json:+,}\"$1\":{\"cusaxd\":${2:-null},\"ratio_prosody\":${rp:-null},\"ratio_ejabberd\":${re:-null},\"limit\":${6:-null},\"result\":\"$v\"}"
  }
  lim=$(awk -v p="${R_logins[$p]:-}" -v e="${R_logins[$e]:-}" 'BEGIN { a = (p == "" ? 0 : 2 * p); b = (e == "" ? 0 : 1.25 * e); m = (a > b ? a : b); if (m > 0) printf "%.1f", m }')
  row logins_per_s "${R_logins[$c]:-}" "${R_logins[$p]:-}" "${R_logins[$e]:-}" ">=2xP, >=1.25xE ($(fmt "$lim"))" "$lim" ge
  lim=$(awk -v p="${R_msgs[$p]:-}" -v e="${R_msgs[$e]:-}" 'BEGIN { a = (p == "" ? 0 : 2 * p); b = (e == "" ? 0 : 1.25 * e); m = (a > b ? a : b); if (m > 0) printf "%.1f", m }')
  row msgs_per_s "${R_msgs[$c]:-}" "${R_msgs[$p]:-}" "${R_msgs[$e]:-}" ">=2xP, >=1.25xE ($(fmt "$lim"))" "$lim" ge
  best=$(best_of min "${R_rss_per_conn[$p]:-}" "${R_rss_per_conn[$e]:-}")
  lim=$(awk -v b="$best" 'BEGIN { if (b != "") printf "%.2f", b / 2 }')
  row rss_kib_per_idle_conn "${R_rss_per_conn[$c]:-}" "${R_rss_per_conn[$p]:-}" "${R_rss_per_conn[$e]:-}" "<=best/2 ($(fmt "$lim"))" "$lim" le
  best=$(best_of min "$(p99_of $p)" "$(p99_of $e)")
  row msg_p99_ms "$(p99_of $c)" "$(p99_of $p)" "$(p99_of $e)" "<=best ($(fmt "$best"))" "$best" le
fi

if [[ -n $out ]]; then
  {
    printf '{"benchmark":"xmpp-c2s","transport":"tcp","tls":false,"mechanism":"%s","accounts":%d,"idle_connections":%d,"pairs":%d,' \
      "$mechanism" "$users" "$idle_conns" "$pairs"
    printf '"login_workers":%d,"login_accounts":%d,"login_seconds":%d,"message_seconds":%d,"latency_rate":%d,' \
      "$login_workers" "$login_users" "$login_s" "$msg_s" "$latency_rate"
    printf '"host":{"cpus":%d,"kernel":"%s","prosody":"%s","ejabberd":"%s"},"servers":{' "$(nproc --all)" "$(uname -r)" \
      "$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || true)" "$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || true)"
    first=1
    for s in "${server_list[@]}"; do
      ((first)) || printf ','; first=0
      st=${R_status[$s]:-skipped}
      if [[ $st == ok ]]; then
        printf '"%s":{"status":"ok","accounts":%s,"load_average":%s,"logins_per_s":%s,"login_p50_ms":%s,"login_p99_ms":%s,"server_cpu_pct_logins":%s,' \
          "$s" "${R_accounts[$s]}" "${R_load[$s]}" "${R_logins[$s]:-null}" "${R_login_p50[$s]:-null}" "${R_login_p99[$s]:-null}" "${R_login_cpu[$s]:-null}"
        printf '"idle_connections":%s,"rss_kib_before":%s,"rss_kib_after":%s,"rss_kib_per_idle_conn":%s,' \
          "${R_idle_conns[$s]:-null}" "${R_rss_before[$s]:-null}" "${R_rss_after[$s]:-null}" "${R_rss_per_conn[$s]:-null}"
        printf '"msgs_per_s":%s,"msg_p50_ms":%s,"msg_p99_ms":%s,"server_cpu_pct_messages":%s,"loader_cpu_pct_messages":%s,"fixed_rate_msgs_per_s":%s,"fixed_rate_p50_ms":%s,"fixed_rate_p99_ms":%s,' \
          "${R_msgs[$s]:-null}" "${R_msg_p50[$s]:-null}" "${R_msg_p99[$s]:-null}" "${R_msg_cpu[$s]:-null}" "${R_msg_loader[$s]:-null}" "${R_lat_rate[$s]:-null}" "${R_lat_p50[$s]:-null}" "${R_lat_p99[$s]:-null}"
        printf '"other_load_cpu0_cpu1_pct":{"logins":"%s","messages":"%s","latency":"%s"},"contended":"%s",' \
          "${R_other["$s/logins"]:-}" "${R_other["$s/messages"]:-}" "${R_other["$s/latency"]:-}" "${R_contended[$s]:-}"
        printf '"raw":{"logins":%s,"idle":%s,"messages":%s,"fixed_rate":%s}}' \
          "${J_logins[$s]:-null}" "${J_idle[$s]:-null}" "${J_msgs[$s]:-null}" "${J_lat[$s]:-null}"
      else
        printf '"%s":{"status":"%s"}' "$s" "$(printf '%s' "$st" | tr -d '"\\')"
      fi
    done
    printf '},"cusaxd_targets":{%s}}\n' "$targets_json"
  } >"$out.tmp"
  if jq . "$out.tmp" >"$out" 2>/dev/null; then rm -f "$out.tmp"; else mv "$out.tmp" "$out"; log "warning: $out is not valid JSON"; fi
  log "summary written to $out"
fi
