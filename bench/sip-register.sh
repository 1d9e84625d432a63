#!/usr/bin/env bash
# REGISTER-with-digest benchmark: Kamailio and cusaxd in the same run.
#
#   bench/sip-register.sh [--servers kamailio,cusaxd] [--users N]
#                         [--rates "2000 4000 ..."] [--step-seconds S]
#                         [--refine K] [--transport u1|t1] [--out FILE]
#                         [--port P] [--kamailio-children N] [--no-build]
#                         [--build-timeout SEC] [--idle-wait SEC] [--nice N] [--keep]
#                         [--cusaxd-bin PATH --cusaxctl-bin PATH]  (implies --no-build)
#
# For every server: start it fresh, pinned to CPU 0 (taskset -c 0), load N
# users (default 10000), then run sipp (pinned to CPU 1) with
# tests/sipp/register_digest.xml at a stepped rate of REGISTER pairs/s
# (REGISTER -> 401 -> REGISTER with Authorization -> 200 is one pair, one
# sipp "call"). Every step is bounded: rate * S calls, sipp -timeout, and an
# outer timeout. Stepping stops at the first step whose failed pairs exceed
# 0.1 %, whose retransmitted requests exceed 0.1 % (answers slower than
# T1 = 500 ms: the server is queueing), or whose rate the loader could not
# offer (below 90 % of the target), then K bisection steps narrow
# the maximum. Reported per server: maximum sustained rate with <0.1 %
# failures, p50/p99 response time of the pair at 10,000 pairs/s, server CPU %
# at that rate and at the maximum, and the ratios cusaxd/kamailio.
# A summary is printed as a table and written as JSON to --out.
#
# Before each server's steps the script waits (at most --idle-wait s, default
# 300) for both cores to be idle; load from other processes during a step is
# measured and reported ("contended"). --nice -10 (root) runs server and sipp
# at a higher scheduling priority, so that a busy machine disturbs less.
#
# A server that cannot be built or started, or does not answer OPTIONS within
# 10 s, is reported and skipped; the script never waits unboundedly.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
scenario="$root/tests/sipp/register_digest.xml"
options_sc="$root/tests/sipp/options.xml"

servers="kamailio,cusaxd"
cusaxd_bin="" cusaxctl_bin=""
users=10000
rates="2000 4000 8000 10000 12000 16000 20000 25000 30000 40000 50000"
step_s=10
refine=2
transport=u1
out=""
port=27060
kam_children=4
build=1
build_timeout=3600
idle_wait=300
nice_level=0
keep=0
fail_limit_ppm=1000   # 0.1 %
ref_rate=10000        # rate for the latency / CPU comparison
realm=bench.local

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --servers) servers=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --step-seconds) step_s=$2; shift 2 ;;
    --refine) refine=$2; shift 2 ;;
    --transport) transport=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --kamailio-children) kam_children=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --build-timeout) build_timeout=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --idle-wait) idle_wait=$2; shift 2 ;;
    --nice) nice_level=$2; shift 2 ;;
    --cusaxd-bin) cusaxd_bin=$2; build=0; shift 2 ;;
    --cusaxctl-bin) cusaxctl_bin=$2; build=0; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case $transport in u1|t1) ;; *) echo "--transport must be u1 or t1" >&2; exit 2 ;; esac
for b in sipp taskset sqlite3 awk timeout; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y sip-tester sqlite3)" >&2; exit 1; }
done
ncpu=$(nproc --all)
((ncpu >= 2)) || { echo "needs 2 CPUs (server on CPU 0, sipp on CPU 1)" >&2; exit 1; }
hz=$(getconf CLK_TCK)

tmp=$(mktemp -d)
started_pids=()
# shared helpers: cleanup, log, proc_ticks, cpu_busy, wait_options, stop_pid,
# stat_col, wait_idle, kamailio_check, build_cusaxd, start_cusaxd
# shellcheck source=bench/lib-sip.sh
. "$here/lib-sip.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- one step
# run_step NAME SERVER_PID PORT RATE -> sets step_* globals, appends a JSON row
run_step() {
  local name=$1 spid=$2 sport=$3 rate=$4
  local calls=$((rate * step_s)) dir="$tmp/$name/r$rate"
  mkdir -p "$dir"
  local s0 s1 c00 c01 c10 c11 t0 t1 sipp_pid rc=0 sipp_ticks
  s0=$(proc_ticks "$spid"); c00=$(cpu_busy 0); c10=$(cpu_busy 1); t0=$(now_ms)
  (
    cd "$dir"
    ulimit -n 65536 2>/dev/null || true
    exec nice -n "$nice_level" timeout -k 5 $((step_s + 40)) taskset -c 1 sipp "127.0.0.1:$sport" -sf "$scenario" \
      -inf "$tmp/users.sipp.csv" -au '[field0]' -ap '[field1]' -auth_uri "$realm" \
      -t "$transport" -r "$rate" -m "$calls" -l $((rate * 6 + 1000)) \
      -nd -nostdin -recv_timeout 5000 -timeout $((step_s + 30))s \
      -buff_size 4194304 -max_recv_loops 10000 -max_sched_loops 10000 \
      -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1000 \
      -trace_screen -screen_file screen.log -trace_err -error_file errors.log \
      >/dev/null 2>sipp.stderr
  ) &
  sipp_pid=$!
  # CPU is measured over the sending window (step_s), not sipp's drain:
  # sample every 0.5 s, take the server/CPU counters once step_s has passed
  # (or when sipp exits, whichever comes first)
  sipp_ticks=0 t1=0
  local last_sipp=0 last_s1=$s0 last_c01=$c00 last_c11=$c10 last_t1=$t0 st
  while kill -0 "$sipp_pid" 2>/dev/null; do
    sleep 0.25
    st=$(proc_ticks "$sipp_pid")
    if ((st > 0)); then
      last_sipp=$st last_s1=$(proc_ticks "$spid") last_c01=$(cpu_busy 0) last_c11=$(cpu_busy 1) last_t1=$(now_ms)
    fi
    if ((t1 == 0 && last_t1 - t0 >= step_s * 1000)); then
      sipp_ticks=$last_sipp s1=$last_s1 c01=$last_c01 c11=$last_c11 t1=$last_t1
    fi
  done
  wait "$sipp_pid" || rc=$?
  if ((t1 == 0)); then
    # sipp finished before step_s: use the last sample taken while it ran
    sipp_ticks=$last_sipp s1=$last_s1 c01=$last_c01 c11=$last_c11 t1=$last_t1
    ((t1 > t0)) || t1=$((t0 + 1))
  fi

  local wall_ms=$((t1 - t0))
  local ok=0 failed=0 retrans=0 outgoing=0
  if [[ -s $dir/stat.csv ]]; then
    ok=$(stat_col "$dir/stat.csv" 'SuccessfulCall(C)')
    failed=$(stat_col "$dir/stat.csv" 'FailedCall(C)')
    retrans=$(stat_col "$dir/stat.csv" 'Retransmissions(C)')
    outgoing=$(stat_col "$dir/stat.csv" 'OutgoingCall(C)')
  fi
  # calls never started count as failures too
  local lost=$((calls - ok))
  ((lost < failed)) && lost=$failed
  local rtt
  rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1 || true)
  local p50=-1 p99=-1 achieved=0
  if [[ -n $rtt && -s $rtt ]]; then
    # p50/p99 of the pair's response time (integer ms) and the rate at which
    # sipp actually started pairs (start = response date - response time)
    read -r p50 p99 achieved < <(awk -F';' 'NR > 1 && $3 == 1 {
        n++; v = int($2 + 0.5); h[v]++; if (v > m) m = v
        st = $1 - $2; if (n == 1 || st < first) first = st; if (st > last) last = st }
      END { if (n == 0) { print -1, -1, 0; exit }
            c = 0; p50 = -1; p99 = -1
            for (k = 0; k <= m; k++) { c += h[k]; if (p50 < 0 && c >= n * 0.50) p50 = k; if (p99 < 0 && c >= n * 0.99) p99 = k }
            span = last - first; printf "%d %d %d\n", p50, p99, (span > 0 ? (n - 1) * 1000 / span : 0) }' "$rtt" || echo "-1 -1 0")
  fi
  local srv_cpu sipp_cpu fg0 fg1
  srv_cpu=$(awk -v a="$s0" -v b="$s1" -v w="$wall_ms" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 100000 / hz / w }')
  sipp_cpu=$(awk -v b="$sipp_ticks" -v w="$wall_ms" -v hz="$hz" 'BEGIN { printf "%.1f", b * 100000 / hz / w }')
  # load on each core that is neither the server (CPU 0) nor sipp (CPU 1)
  fg0=$(awk -v a="$c00" -v b="$c01" -v s="$((s1 - s0))" -v w="$wall_ms" -v hz="$hz" 'BEGIN { x = (b - a - s) * 100000 / hz / w; if (x < 0) x = 0; printf "%.1f", x }')
  fg1=$(awk -v a="$c10" -v b="$c11" -v s="$sipp_ticks" -v w="$wall_ms" -v hz="$hz" 'BEGIN { x = (b - a - s) * 100000 / hz / w; if (x < 0) x = 0; printf "%.1f", x }')
  local fail_ppm=$((lost * 1000000 / calls))
  local verdict=pass
  # a retransmitted request means a response took longer than T1 (500 ms):
  # queueing, not sustained service; more than 0.1 % of the requests fails it
  local retrans_ppm=$((retrans * 1000000 / (2 * calls)))
  if ((fail_ppm > fail_limit_ppm)); then
    verdict=fail
  elif ((retrans_ppm > fail_limit_ppm)); then
    verdict=retrans
  elif ((achieved * 100 < rate * 90)); then
    # server answered everything but the offered rate was not reached
    if awk -v c="$sipp_cpu" 'BEGIN { exit !(c >= 90) }'; then verdict=loader-bound; else verdict=slow; fi
  fi
  local contended=false
  if awk -v a="$fg0" -v b="$fg1" 'BEGIN { exit !(a > 10 || b > 10) }'; then contended=true; fi

  step_verdict=$verdict step_p50=$p50 step_p99=$p99 step_cpu=$srv_cpu step_achieved=$achieved
  printf '  %-9s %7d/s  achieved %6d/s  ok %8d  failed %7d (%6.3f%%)  retrans %7d  p50 %5s ms  p99 %5s ms  server CPU %5.1f%%  sipp CPU %5.1f%%  other load cpu0 %4.1f%% cpu1 %4.1f%%  %s\n' \
    "$name" "$rate" "$achieved" "$ok" "$lost" "$(awk -v p="$fail_ppm" 'BEGIN { print p / 10000 }')" "$retrans" \
    "$p50" "$p99" "$srv_cpu" "$sipp_cpu" "$fg0" "$fg1" "$verdict" >&2
  steps_json+="${steps_json:+,}{\"rate\":$rate,\"calls\":$calls,\"outgoing\":$outgoing,\"ok\":$ok,\"failed\":$lost,\"fail_ppm\":$fail_ppm,\"retransmissions\":$retrans,\"achieved_rate\":$achieved,\"p50_ms\":$p50,\"p99_ms\":$p99,\"server_cpu_pct\":$srv_cpu,\"sipp_cpu_pct\":$sipp_cpu,\"other_load_cpu0_pct\":$fg0,\"other_load_cpu1_pct\":$fg1,\"contended\":$contended,\"sipp_exit\":$rc,\"verdict\":\"$verdict\"}"
  # let the server drain retransmissions and expiring transactions
  if [[ $verdict == pass ]]; then sleep 2; else sleep 6; fi
}

# ------------------------------------------------------------ server start
# start_SERVER PORT -> sets srv_pid, or returns 1 with srv_error
start_kamailio() {
  local sport=$1 d="$tmp/kamailio"
  mkdir -p "$d"
  kamailio_check || return 1
  nice -n "$nice_level" taskset -c 0 kamailio -DD -E -m 1024 -M 16 -Y "$d" -f "$here/kamailio/kamailio-registrar.cfg" \
    -A SIP_PORT="$sport" -A "DBURL=\"sqlite://$tmp/kamailio.sqlite\"" -A CHILDREN="$kam_children" \
    >"$d/server.log" 2>&1 &
  srv_pid=$!
  started_pids+=("$srv_pid")
}

cusaxd_bin=${cusaxd_bin:-$root/target/release/cusaxd}
cusaxctl_bin=${cusaxctl_bin:-$root/target/release/cusaxctl}

# ---------------------------------------------------------------- main
log "users: $users, step: ${step_s}s, rates: $rates, transport: $transport, tmp: $tmp"
"$here/kamailio/mkdb.sh" "$users" "$tmp" 2>/dev/null

# build first, so that compiling never overlaps a measurement
if [[ ,$servers, == *,cusaxd,* ]]; then build_cusaxd || true; fi

declare -A R_status R_max R_p50 R_p99 R_cpu10k R_cpumax R_steps R_contended
IFS=',' read -r -a server_list <<<"$servers"
i=0
for s in "${server_list[@]}"; do
  sport=$((port + 10 * i)); i=$((i + 1))
  srv_pid="" srv_error="" steps_json=""
  log "$s: starting on 127.0.0.1:$sport (CPU 0)"
  case $s in
    kamailio) start_kamailio "$sport" || true ;;
    cusaxd)
      # no TLS listeners (the defaults 5061/5223 may be taken on a shared machine)
      mkdir -p "$tmp/cusaxd/data"
      printf '[sip]\ntls_port = 0\n\n[xmpp]\ntls_port = 0\n' >"$tmp/cusaxd/data/cusaxd.toml"
      start_cusaxd "$sport" || true ;;
    *) srv_error="unknown server" ;;
  esac
  if [[ -z $srv_pid ]]; then
    log "$s: skipped: $srv_error"
    R_status[$s]="skipped: $srv_error"; continue
  fi
  if ! wait_options "$sport" 10 "$srv_pid"; then
    if [[ $s == cusaxd ]]; then srv_error="no SIP listener"; else srv_error="no answer to OPTIONS within 10 s"; fi
    log "$s: $srv_error (log: $(tail -2 "$tmp/$s/server.log" 2>/dev/null | tr '\n' ' ' | cut -c1-200))"
    R_status[$s]="skipped: $srv_error"
    stop_pid "$srv_pid"; continue
  fi
  wait_idle "$idle_wait" || true
  log "$s: up (pid $srv_pid); stepping"

  best=0 best_cpu=0 first_fail=0 have_ref=0 contended=false
  for rate in $rates; do
    run_step "$s" "$srv_pid" "$sport" "$rate"
    [[ $steps_json == *'"contended":true'* ]] && contended=true
    if ((rate == ref_rate)); then
      have_ref=1 R_p50[$s]=$step_p50 R_p99[$s]=$step_p99 R_cpu10k[$s]=$step_cpu
    fi
    if [[ $step_verdict == pass ]]; then
      best=$rate best_cpu=$step_cpu
    else
      first_fail=$rate; break
    fi
    kill -0 "$srv_pid" 2>/dev/null || { log "$s: server died"; break; }
  done
  # bisect between the last passing and the first failing rate
  lo=$best hi=$first_fail
  for ((k = 0; k < refine && hi > 0 && hi - lo > 500; k++)); do
    kill -0 "$srv_pid" 2>/dev/null || break
    mid=$(((lo + hi) / 2 / 100 * 100))
    run_step "$s" "$srv_pid" "$sport" "$mid"
    if [[ $step_verdict == pass ]]; then lo=$mid best=$mid best_cpu=$step_cpu; else hi=$mid; fi
  done
  # latency at the reference rate even when stepping stopped below it
  if ((!have_ref)) && kill -0 "$srv_pid" 2>/dev/null; then
    run_step "$s" "$srv_pid" "$sport" "$ref_rate"
    R_p50[$s]=$step_p50 R_p99[$s]=$step_p99 R_cpu10k[$s]=$step_cpu
  fi
  R_status[$s]=ok R_max[$s]=$best R_cpumax[$s]=$best_cpu R_steps[$s]=$steps_json R_contended[$s]=$contended
  stop_pid "$srv_pid"
done

# ---------------------------------------------------------------- report
ratio() { # a/b or null
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 <= 0 || a + 0 < 0) print "null"; else printf "%.2f", a / b }'
}
echo
echo "REGISTER+digest pairs/s, $users users, transport $transport, ${step_s}s steps, server on CPU 0, sipp on CPU 1"
printf '%-10s %-24s %14s %10s %10s %14s %14s %s\n' server status "max pairs/s" "p50 @10k" "p99 @10k" "CPU% @10k" "CPU% @max" note
for s in "${server_list[@]}"; do
  st=${R_status[$s]:-skipped}
  if [[ $st == ok ]]; then
    note=""; [[ ${R_contended[$s]} == true ]] && note="other load on a benchmark core: numbers unreliable"
    p50=${R_p50[$s]:--1}; p99=${R_p99[$s]:--1}
    ((p50 == 0)) && p50="<1" || p50+=" ms"
    ((${R_p99[$s]:--1} == 0)) && p99="<1" || p99+=" ms"
    printf '%-10s %-24s %14s %10s %10s %14s %14s %s\n' "$s" ok "${R_max[$s]}" "$p50" "$p99" "${R_cpu10k[$s]:-n/a}" "${R_cpumax[$s]}" "$note"
  else
    printf '%-10s %s\n' "$s" "$st"
  fi
done
k=kamailio c=cusaxd
r_max=$(ratio "${R_max[$c]:-}" "${R_max[$k]:-}")
r_p50=$(ratio "${R_p50[$c]:-}" "${R_p50[$k]:-}")
r_p99=$(ratio "${R_p99[$c]:-}" "${R_p99[$k]:-}")
r_cpu=$(ratio "${R_cpu10k[$c]:-}" "${R_cpu10k[$k]:-}")
if [[ ${R_status[$k]:-} == ok && ${R_status[$c]:-} == ok ]]; then
  echo "cusaxd/kamailio: max rate x$r_max, p50 x$r_p50, p99 x$r_p99, CPU at 10k x$r_cpu (ratios of 0 ms latencies are null)"
fi

if [[ -n $out ]]; then
  {
    printf '{"benchmark":"sip-register","users":%d,"transport":"%s","step_seconds":%d,"fail_limit_pct":0.1,"reference_rate":%d,"nice":%d,' \
      "$users" "$transport" "$step_s" "$ref_rate" "$nice_level"
    printf '"host":{"cpus":%d,"kernel":"%s","sipp":"%s","kamailio":"%s"},"servers":{' \
      "$ncpu" "$(uname -r)" "$(sipp -v 2>/dev/null | awk '/SIPp v/ { print $2; exit }' | tr -d '\r')" \
      "$(kamailio -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
    first=1
    for s in "${server_list[@]}"; do
      ((first)) || printf ','; first=0
      st=${R_status[$s]:-skipped}
      if [[ $st == ok ]]; then
        printf '"%s":{"status":"ok","max_rate":%d,"p50_ms_at_ref":%s,"p99_ms_at_ref":%s,"server_cpu_pct_at_ref":%s,"server_cpu_pct_at_max":%s,"contended":%s,"steps":[%s]}' \
          "$s" "${R_max[$s]}" "${R_p50[$s]:-null}" "${R_p99[$s]:-null}" "${R_cpu10k[$s]:-null}" "${R_cpumax[$s]}" "${R_contended[$s]}" "${R_steps[$s]}"
      else
        printf '"%s":{"status":"%s"}' "$s" "$(printf '%s' "$st" | tr -d '"\\')"
      fi
    done
    printf '},"ratio_cusaxd_over_kamailio":{"max_rate":%s,"p50":%s,"p99":%s,"cpu_at_ref":%s}}\n' "$r_max" "$r_p50" "$r_p99" "$r_cpu"
  } >"$out"
  log "summary written to $out"
fi
