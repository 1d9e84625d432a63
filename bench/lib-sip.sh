# Shared shell functions of bench/sip-register.sh and bench/sip-calls.sh.
# Sourced, not run. The functions use these globals of the sourcing script:
#   tmp, keep, started_pids   scratch directory, --keep, PIDs to stop on exit
#   hz                        getconf CLK_TCK
#   transport, options_sc     sipp transport (u1|t1) and tests/sipp/options.xml
#   nice_level, realm         nice level of server and sipp; SIP domain
#   root, build, build_timeout, cusaxd_bin, cusaxctl_bin   cusaxd build/start
# Only processes whose PIDs are in started_pids are ever signalled by cleanup.

cleanup() {
  local p
  for p in "${started_pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  if ((keep)); then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- helpers

# CPU ticks (utime+stime) of a process and all its descendants
# (cat, not awk, opens the files: a process may vanish while we read)
proc_ticks() {
  local top=$1
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v top="$top" '
    {
      pid = $1; line = $0
      sub(/^[0-9]+ \(.*\) /, "", line)   # drop "pid (comm) "
      split(line, f, " ")
      ppid[pid] = f[2]; t[pid] = f[12] + f[13]
    }
    END {
      keep[top] = 1; changed = 1
      while (changed) { changed = 0
        for (p in ppid) if (!(p in keep) && (ppid[p] in keep)) { keep[p] = 1; changed = 1 } }
      s = 0; for (p in keep) s += t[p]; print s + 0
    }'
}

# busy ticks of one CPU from /proc/stat
cpu_busy() {
  awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

now_ms() { date +%s%3N; }

# answer: 0 if SERVER:PORT answers OPTIONS with 200 within the deadline (s)
wait_options() {
  local port=$1 deadline=$2 pid=$3 t0
  t0=$(date +%s)
  while (($(date +%s) - t0 < deadline)); do
    if (cd "$tmp" && timeout 3 sipp "127.0.0.1:$port" -sf "$options_sc" -t "$transport" -m 1 \
          -nd -nostdin -recv_timeout 1000 -timeout 2s >/dev/null 2>&1); then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
  return 1
}

stop_pid() {
  local p=$1
  kill "$p" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# one value (by column name) of the last row of a sipp -trace_stat file
stat_col() {
  awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    { v = $c } END { print v + 0 }' "$1"
}

# wait_idle SECONDS: wait (bounded) until both cores are nearly idle, so that
# a compile or another benchmark does not share the cores being measured
wait_idle() {
  local limit=$1 t0 a0 a1 b0 b1
  t0=$(date +%s)
  while :; do
    a0=$(cpu_busy 0); b0=$(cpu_busy 1); sleep 2; a1=$(cpu_busy 0); b1=$(cpu_busy 1)
    if (((a1 - a0) * 100 / (2 * hz) < 10 && (b1 - b0) * 100 / (2 * hz) < 10)); then return 0; fi
    if (($(date +%s) - t0 >= limit)); then
      log "warning: cores still busy after ${limit}s (cpu0 $(((a1 - a0) * 100 / (2 * hz)))%, cpu1 $(((b1 - b0) * 100 / (2 * hz)))%); measuring anyway"
      return 1
    fi
  done
}

# kamailio_check -> 0, or 1 with srv_error: Kamailio and its sqlite module are
# installed; raises net.core.rmem_max to 4 MB (root) for maxbuffer=4194304
kamailio_check() {
  if ! command -v kamailio >/dev/null; then srv_error="kamailio not installed"; return 1; fi
  if [[ ! -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ]] && ! ls /usr/lib/*/kamailio/modules/db_sqlite.so >/dev/null 2>&1; then
    srv_error="kamailio-sqlite-modules not installed"; return 1
  fi
  local rmax
  rmax=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)
  if ((rmax < 4194304)); then
    sysctl -q -w net.core.rmem_max=4194304 2>/dev/null \
      || log "warning: net.core.rmem_max=$rmax (< 4 MB); Kamailio will drop UDP bursts"
  fi
  return 0
}

cusaxd_built=""
build_cusaxd() {
  [[ -n $cusaxd_built ]] && { [[ $cusaxd_built == ok ]]; return; }
  if ((build)); then
    if ! command -v cargo >/dev/null; then cusaxd_built="cargo not found"; return 1; fi
    log "cusaxd: cargo build --release -p cusaxd -p cusaxctl (bounded ${build_timeout}s)"
    if ! (cd "$root" && timeout "$build_timeout" cargo build --release -p cusaxd -p cusaxctl) >"$tmp/cargo-build.log" 2>&1; then
      cusaxd_built="build failed (tail: $(tail -1 "$tmp/cargo-build.log" | tr -d '"\\' | cut -c1-120))"
      return 1
    fi
  fi
  if [[ ! -x $cusaxd_bin || ! -x $cusaxctl_bin ]]; then cusaxd_built="target/release/cusaxd or cusaxctl missing"; return 1; fi
  cusaxd_built=ok
}

start_cusaxd() {
  local sport=$1 d="$tmp/cusaxd"
  mkdir -p "$d/data"
  if ! build_cusaxd; then srv_error=$cusaxd_built; return 1; fi
  # the domain must exist before accounts can be created in it (cusaxd would add it at start)
  if ! { "$cusaxctl_bin" --data-dir "$d/data" domain add "$realm" \
         && timeout 300 "$cusaxctl_bin" --data-dir "$d/data" user import "$tmp/users.csv"; } >"$d/import.log" 2>&1; then
    srv_error="cusaxctl user import failed: $(tail -1 "$d/import.log" | tr -d '"\\' | cut -c1-120)"
    return 1
  fi
  nice -n "$nice_level" taskset -c 0 "$cusaxd_bin" serve --data-dir "$d/data" --domain "$realm" --bind 127.0.0.1 \
    --sip-port "$sport" --xmpp-port 0 --http-port 0 >"$d/server.log" 2>&1 &
  srv_pid=$!
  started_pids+=("$srv_pid")
}

# proc_ticks_multi PID... -> one line "t1 t2 ...": CPU ticks of each process
# with all its descendants, from a single pass over /proc (the PIDs' trees
# must not overlap; a vanished PID gives 0)
proc_ticks_multi() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v tops="$*" '
    {
      pid = $1; line = $0
      sub(/^[0-9]+ \(.*\) /, "", line)
      split(line, f, " ")
      ppid[pid] = f[2]; t[pid] = f[12] + f[13]
    }
    END {
      n = split(tops, top, " ")
      for (i = 1; i <= n; i++) {
        delete keep; keep[top[i]] = 1; changed = 1
        while (changed) { changed = 0
          for (p in ppid) if (!(p in keep) && (ppid[p] in keep)) { keep[p] = 1; changed = 1 } }
        s = 0; for (p in keep) if (p in t) s += t[p]
        printf "%s%d", (i > 1 ? " " : ""), s
      }
      print ""
    }'
}
