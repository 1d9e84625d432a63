#!/usr/bin/env bash
# Calls through the proxy: Kamailio and cusaxd in the same run.
#
#   bench/sip-calls.sh [--servers kamailio,cusaxd[,kamailio-noauth]]
#                      [--callers N] [--callees K] [--hold MS]
#                      [--rates "1000 2000 ..."] [--step-seconds S] [--refine K]
#                      [--confirm-seconds C]
#                      [--ref-rate R] [--transport u1|t1] [--out FILE]
#                      [--port P] [--kamailio-children N] [--no-build]
#                      [--build-timeout SEC] [--idle-wait SEC] [--nice N] [--keep]
#                      [--cusaxd-bin PATH --cusaxctl-bin PATH]  (implies --no-build)
#
# One call = sipp UAC -> proxy -> sipp UAS: INVITE -> 407 -> ACK, INVITE with
# Proxy-Authorization -> 100/180 -> 200 -> ACK -> (--hold ms) -> BYE -> 200
# (bench/sipp/uac_call_load.xml, bench/sipp/uas_answer_load.xml). For every
# server: start it fresh, pinned to CPU 0 (taskset -c 0), with N callers
# (default 1000) and K callees (default 1) as users; register the callees
# from the port of the UAS and every caller from the port of its UAC; place
# one traced call (a failure is reported with the sipp logs and the server is
# skipped); then step the call rate with the UAS and the K UACs (one per
# callee) pinned to CPU 1. Every step is bounded: rate * S calls, sipp
# -timeout, and an outer timeout. Stepping stops at the first step whose
# failed calls exceed 0.1 %, whose retransmissions exceed 0.1 % of the
# retransmittable requests (answers slower than T1 = 500 ms: queueing), or
# whose rate the loader could not offer (below 90 % of the target); then K
# bisection steps narrow the maximum. That maximum must then hold for C
# seconds (default 40, after a 35 s pause that lets the transactions of the
# earlier steps expire), else up to three lower rates (-10 % each) are tried.
# Reported per server: maximum sustained
# calls/s, p50/p99 call setup time (first INVITE -> 200, sipp rtd) and server
# CPU at the reference rate (default 1000 calls/s), server and sipp CPU at the
# maximum, what limited it (server or loader core), and cusaxd/kamailio
# ratios; a table, and JSON with --out.
#
# kamailio-noauth: bench/kamailio/kamailio-proxy.cfg with WITH_NO_CALL_AUTH
# (INVITE relayed without a challenge; bench/sipp/uac_call_noauth_load.xml).
#
# sipp 3.6 puts one fixed digest uri in every Proxy-Authorization (-auth_uri),
# and a strict proxy requires uri = Request-URI, hence one UAC process per
# callee (--callees K runs K UACs at rate/K each).
#
# Before each server's steps the script waits (at most --idle-wait s, default
# 300) for both cores to be idle; load from other processes during a step is
# measured and reported ("contended"). A server that cannot be built or
# started, or does not answer OPTIONS within 10 s, is reported and skipped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
options_sc="$root/tests/sipp/options.xml"
register_sc="$root/tests/sipp/register_digest.xml"
uas_sc="$here/sipp/uas_answer_load.xml"

servers="kamailio,cusaxd"
cusaxd_bin="" cusaxctl_bin=""
callers=1000
callees=1
hold_ms=0
rates="1000 2000 3000 4000 5000 6000 8000"
step_s=10
refine=2
confirm_s=40          # sustain check of the maximum (0 = off)
confirm_gap=35        # pause before it: transactions of earlier steps expire (64*T1 = 32 s)
ref_rate=1000         # rate for the latency / CPU comparison (about half of Kamailio's max here)
transport=u1
out=""
port=27160
kam_children=2
build=1
build_timeout=3600
idle_wait=300
nice_level=0
keep=0
fail_limit_ppm=1000   # 0.1 %
realm=bench.local

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --servers) servers=$2; shift 2 ;;
    --callers) callers=$2; shift 2 ;;
    --callees) callees=$2; shift 2 ;;
    --hold) hold_ms=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --step-seconds) step_s=$2; shift 2 ;;
    --refine) refine=$2; shift 2 ;;
    --confirm-seconds) confirm_s=$2; shift 2 ;;
    --ref-rate) ref_rate=$2; shift 2 ;;
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
((callees >= 1 && callees <= 10)) || { echo "--callees must be 1..10" >&2; exit 2; }
((callers >= callees)) || { echo "--callers must be >= --callees" >&2; exit 2; }
for b in sipp taskset sqlite3 awk timeout; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y sip-tester sqlite3)" >&2; exit 1; }
done
ncpu=$(nproc --all)
((ncpu >= 2)) || { echo "needs 2 CPUs (server on CPU 0, sipp on CPU 1)" >&2; exit 1; }
hz=$(getconf CLK_TCK)

tmp=$(mktemp -d)
started_pids=()
# shellcheck source=bench/lib-sip.sh
. "$here/lib-sip.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# the cargo target directory the build writes to
cusaxd_bin=${cusaxd_bin:-${CARGO_TARGET_DIR:-$root/target}/release/cusaxd}
cusaxctl_bin=${cusaxctl_bin:-${CARGO_TARGET_DIR:-$root/target}/release/cusaxctl}

# common sipp options: loopback, bounded, large buffers, as sip-register.sh
sipp_common=(-t "$transport" -i 127.0.0.1 -nostdin -buff_size 4194304 -max_recv_loops 10000 -max_sched_loops 10000)

# ------------------------------------------------------------ users
# callers user1..userN, callees user(N+1)..user(N+K); caller j calls callee
# (j-1) % K through UAC (j-1) % K. CSV: caller;password;domain;callee
make_csvs() {
  local i
  for ((i = 0; i < callees; i++)); do
    { echo SEQUENTIAL
      awk -v n="$callers" -v k="$callees" -v i="$i" -v d="$realm" 'BEGIN {
        for (j = 1; j <= n; j++) if ((j - 1) % k == i) printf "user%d;pw-%d;%s;user%d\n", j, j, d, n + 1 + i }'
    } >"$tmp/callers$i.csv"
  done
  { echo SEQUENTIAL
    awk -v n="$callers" -v k="$callees" -v d="$realm" 'BEGIN {
      for (i = 1; i <= k; i++) printf "user%d;pw-%d;%s\n", n + i, n + i, d }'
  } >"$tmp/callees.csv"
}

uas_port() { echo $(($1 + 1)); }
uac_port() { echo $(($1 + 2 + $2)); }   # SERVER_PORT UAC_INDEX

# register CSV from LOCAL_PORT: all lines, 500/s; 0 if every REGISTER pair passed
register_from() {
  local sport=$1 csv=$2 lport=$3 dir=$4 n
  n=$(($(wc -l <"$csv") - 1))
  (cd "$dir" && timeout -k 5 60 sipp "127.0.0.1:$sport" -sf "$register_sc" "${sipp_common[@]}" -p "$lport" \
     -inf "$csv" -au '[field0]' -ap '[field1]' -auth_uri "$realm" -m "$n" -r 500 -l 2000 \
     -nd -recv_timeout 5000 -timeout 50s -timeout_error \
     -trace_err -error_file "register-$lport.err" >/dev/null 2>&1)
}

# ------------------------------------------------------------ sipp logs
# the most frequent kinds of sipp error events: each event (a date-stamped
# line; sipp 3.6 omits the newline after some) with its Call-ID blanked and,
# for "Discarding message ...:", the first line of that message;
# summarize_errors FILE... COUNT -> lines "N event"
summarize_errors() {
  local n=${*: -1}; set -- "${@:1:$#-1}"
  cat "$@" 2>/dev/null | tr -d '\r' \
    | sed -E 's/([0-9]{4}-[0-9]{2}-[0-9]{2}\t[0-9:.]+\t[0-9.]+: )/\n\1/g' \
    | awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]\t/ {
             if (pend) print ev
             sub(/^[^\t]*\t[^\t]*\t[0-9.]*: */, ""); ev = $0; pend = ($0 ~ /:$/)
             if (!pend) print ev
             next }
           pend { print ev " " $0; pend = 0 }
           END { if (pend) print ev }' \
    | sed -E -e "s/Call-I[dD]:? *'[^']*'/Call-ID '…'/g" -e 's/[0-9]+-[0-9]+@[0-9.]+/…/g' \
    | sort | uniq -c | sort -rn | head -"$n" | sed -E 's/^ *//' | cut -c1-200 || true
}

# failed_kinds STAT.csv... -> "FailedTimeoutOnRecv=12 ..." (sipp's cumulative
# failure counters of the last row, summed over the files, non-zero only)
failed_kinds() {
  local f
  for f in "$@"; do [[ -s $f ]] && { head -1 "$f"; tail -1 "$f"; }; done | awk -F';' '
    NR % 2 == 1 { for (i = 1; i <= NF; i++) name[i] = $i; next }
    { for (i = 1; i <= NF; i++) if (name[i] ~ /^Failed.*\(C\)$/ && name[i] != "FailedCall(C)") s[name[i]] += $i }
    END { for (k in s) if (s[k] > 0) { sub(/\(C\)$/, "", k); printf "%s%s=%d", (o++ ? " " : ""), k, s[k "(C)"] } }'
}

# json_str TEXT -> a JSON string literal
json_str() {
  printf '%s' "$1" | awk 'BEGIN { ORS = "" } { gsub(/\r/, ""); gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, " ");
    if (NR > 1) print "\\n"; print } END { }' | { printf '"'; cat; printf '"'; }
}

# udp_drops PORT... -> "d1 d2 ...": datagrams the kernel dropped (receive
# buffer full) on the UDP sockets bound to each local port, from /proc/net/udp
udp_drops() {
  cat /proc/net/udp /proc/net/udp6 2>/dev/null | awk -v ports="$*" '
    function hex(h,   i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", toupper(substr(h, i, 1))) - 1; return v }
    BEGIN { n = split(ports, p, " ") }
    $2 ~ /:/ && $1 != "sl" { k = split($2, a, ":"); d[hex(a[k])] += $NF }
    END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), d[p[i]] + 0; print "" }' 2>/dev/null \
  || echo 0 0 0
}

# start_uas NAME_DIR SERVER_PORT [EXTRA...] -> uas_pid (sipp itself, so that
# SIGUSR1 asks it to finish its calls and exit; bounded by its -timeout)
start_uas() {
  local dir=$1 sport=$2; shift 2
  (
    cd "$dir"
    ulimit -n 65536 2>/dev/null || true
    exec nice -n "$nice_level" taskset -c 1 sipp -sf "$uas_sc" "${sipp_common[@]}" -p "$(uas_port "$sport")" \
      -s callee -nd -timeout $((step_s + 60))s "$@" >/dev/null 2>uas.stderr
  ) &
  uas_pid=$!
  started_pids+=("$uas_pid")
}

# finish_uas: graceful stop (SIGUSR1: no new calls, exit when the current
# ones ended, i.e. after the 2 s timewait), then SIGTERM/SIGKILL
finish_uas() {
  local p=$uas_pid
  kill -USR1 "$p" 2>/dev/null || true
  for _ in $(seq 80); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$p"
  wait "$p" 2>/dev/null || true
}

# uac_args SERVER_NAME INDEX -> the scenario-dependent UAC arguments
uac_args() {
  local name=$1 i=$2
  if [[ $name == kamailio-noauth ]]; then
    uac_a=(-sf "$here/sipp/uac_call_noauth_load.xml" -inf "$tmp/callers$i.csv")
  else
    uac_a=(-sf "$here/sipp/uac_call_load.xml" -inf "$tmp/callers$i.csv"
           -au '[field0]' -ap '[field1]' -auth_uri "user$((callers + 1 + i))@$realm")
  fi
}

# ------------------------------------------------------------ smoke call
# one traced call per UAC; 0 if all passed, else smoke_error and kept logs
smoke_call() {
  local name=$1 sport=$2 dir="$tmp/$1/smoke" i rc=0 urc=0
  mkdir -p "$dir"
  start_uas "$dir" "$sport" -m "$callees" -trace_msg -message_file uas.msg -trace_err -error_file uas.err
  sleep 0.5
  for ((i = 0; i < callees; i++)); do
    uac_args "$name" "$i"
    (cd "$dir" && timeout -k 5 30 sipp "127.0.0.1:$sport" "${uac_a[@]}" "${sipp_common[@]}" -p "$(uac_port "$sport" "$i")" \
       -m 1 -d "$hold_ms" -nd -recv_timeout 8000 -timeout 20s -timeout_error \
       -trace_msg -message_file "uac$i.msg" -trace_err -error_file "uac$i.err" >/dev/null 2>"uac$i.stderr") || rc=$?
    ((rc == 0)) || break
  done
  for _ in $(seq 50); do kill -0 "$uas_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$uas_pid" 2>/dev/null && finish_uas
  wait "$uas_pid" 2>/dev/null || urc=$?
  if ((rc != 0)); then
    smoke_error="call failed (UAC sipp exit $rc): $(summarize_errors "$dir"/uac*.err 1 | sed 's/^[0-9]* //')"
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------- one step
# run_step NAME SERVER_PID PORT RATE -> sets step_* globals, appends a JSON row
run_step() {
  local name=$1 spid=$2 sport=$3 rate=$4
  local dir="$tmp/$name/r$rate" i k st calls=0
  # a repeated rate gets its own directory (sipp output files are found by glob)
  [[ -e $dir ]] && dir="$tmp/$name/r$rate-$(date +%s%N)"
  mkdir -p "$dir"
  # UAS first, on the port the callees registered from
  start_uas "$dir" "$sport" -trace_stat -stf uas-stat.csv -fd 1 -trace_err -error_file uas-errors.log
  sleep 0.5
  if ! kill -0 "$uas_pid" 2>/dev/null; then
    log "$name: UAS sipp did not start: $(tail -2 "$dir/uas.stderr" | tr '\n' ' ')"
  fi
  local s0 s1 c00 c01 c10 c11 t0 t1 rc=0 uac_pids=() r_i n_i
  read -r s0 u0 < <(proc_ticks_multi "$spid" "$uas_pid")
  c00=$(cpu_busy 0); c10=$(cpu_busy 1); t0=$(now_ms)
  # UDP receive-buffer drops: server socket(s), UAS, UACs (max over samples,
  # as a socket's counter disappears with its sipp)
  local drop_ports=("$sport" "$(uas_port "$sport")") d0 dmax dv
  for ((i = 0; i < callees; i++)); do drop_ports+=("$(uac_port "$sport" "$i")"); done
  read -r -a d0 < <(udp_drops "${drop_ports[@]}")
  dmax=("${d0[@]}")
  for ((i = 0; i < callees; i++)); do
    r_i=$((rate / callees + (i < rate % callees ? 1 : 0)))
    n_i=$((r_i * step_s)); calls=$((calls + n_i))
    uac_args "$name" "$i"
    (
      cd "$dir"
      ulimit -n 65536 2>/dev/null || true
      exec nice -n "$nice_level" timeout -k 5 $((step_s + 40)) taskset -c 1 sipp "127.0.0.1:$sport" "${uac_a[@]}" \
        "${sipp_common[@]}" -p "$(uac_port "$sport" "$i")" -r "$r_i" -m "$n_i" -l $((r_i * 6 + 1000)) -d "$hold_ms" \
        -nd -recv_timeout 5000 -timeout $((step_s + 30))s \
        -trace_stat -stf "uac$i-stat.csv" -fd 1 -trace_rtt -rtt_freq 1000 \
        -trace_err -error_file "uac$i-errors.log" >/dev/null 2>"uac$i.stderr"
    ) &
    uac_pids+=($!)
  done
  # CPU over the sending window (step_s), sampled every 0.25 s while the UACs run
  local sipp_ticks=0 last_sipp=0 last_s1=$s0 last_c01=$c00 last_c11=$c10 last_t1=$t0 alive p v
  t1=0
  while :; do
    alive=0
    for p in "${uac_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.25
    read -r -a v < <(proc_ticks_multi "$spid" "$uas_pid" "${uac_pids[@]}")
    read -r -a dv < <(udp_drops "${drop_ports[@]}")
    for ((k = 0; k < ${#dv[@]}; k++)); do ((dv[k] > dmax[k])) && dmax[k]=${dv[k]}; done
    st=0
    for ((k = 2; k < ${#v[@]}; k++)); do st=$((st + v[k])); done
    if ((st > 0)); then
      last_sipp=$((st + v[1] - u0)) last_s1=${v[0]} last_c01=$(cpu_busy 0) last_c11=$(cpu_busy 1) last_t1=$(now_ms)
    fi
    if ((t1 == 0 && last_t1 - t0 >= step_s * 1000)); then
      sipp_ticks=$last_sipp s1=$last_s1 c01=$last_c01 c11=$last_c11 t1=$last_t1
    fi
  done
  for p in "${uac_pids[@]}"; do wait "$p" || rc=$?; done
  if ((t1 == 0)); then
    sipp_ticks=$last_sipp s1=$last_s1 c01=$last_c01 c11=$last_c11 t1=$last_t1
    ((t1 > t0)) || t1=$((t0 + 1))
  fi
  finish_uas
  local drops_srv=$((dmax[0] - d0[0])) drops_uas=$((dmax[1] - d0[1])) drops_uac=0
  for ((k = 2; k < ${#dmax[@]}; k++)); do drops_uac=$((drops_uac + dmax[k] - d0[k])); done

  local wall_ms=$((t1 - t0))
  local ok=0 failed=0 retrans=0 outgoing=0 uas_ok=0 uas_failed=0 uas_retrans=0 f
  for ((i = 0; i < callees; i++)); do
    f="$dir/uac$i-stat.csv"
    [[ -s $f ]] || continue
    ok=$((ok + $(stat_col "$f" 'SuccessfulCall(C)')))
    failed=$((failed + $(stat_col "$f" 'FailedCall(C)')))
    retrans=$((retrans + $(stat_col "$f" 'Retransmissions(C)')))
    outgoing=$((outgoing + $(stat_col "$f" 'OutgoingCall(C)')))
  done
  if [[ -s $dir/uas-stat.csv ]]; then
    uas_ok=$(stat_col "$dir/uas-stat.csv" 'SuccessfulCall(C)')
    uas_failed=$(stat_col "$dir/uas-stat.csv" 'FailedCall(C)')
    uas_retrans=$(stat_col "$dir/uas-stat.csv" 'Retransmissions(C)')
  fi
  # calls never started count as failures too
  local lost=$((calls - ok))
  ((lost < failed)) && lost=$failed
  local p50=-1 p99=-1 achieved=0 bye_p99=-1
  # rtd 1 = call setup (first INVITE -> 200), rtd 2 = BYE -> 200; the start
  # of each call (response date - setup time) gives the rate actually offered
  read -r p50 p99 achieved bye_p99 < <(cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$1 ~ /^[0-9.]+$/ {
      if ($3 == 1) { n++; v = int($2 + 0.5); h[v]++; if (v > m) m = v
        st = $1 - $2; if (n == 1 || st < first) first = st; if (st > last) last = st }
      else if ($3 == 2) { nb++; w = int($2 + 0.5); hb[w]++; if (w > mb) mb = w } }
    END { if (n == 0) { print -1, -1, 0, -1; exit }
          c = 0; p50 = -1; p99 = -1
          for (k = 0; k <= m; k++) { c += h[k]; if (p50 < 0 && c >= n * 0.50) p50 = k; if (p99 < 0 && c >= n * 0.99) p99 = k }
          c = 0; b99 = -1
          for (k = 0; k <= mb; k++) { c += hb[k]; if (b99 < 0 && c >= nb * 0.99) b99 = k }
          span = last - first; printf "%d %d %d %d\n", p50, p99, (span > 0 ? (n - 1) * 1000 / span : 0), b99 }' || echo "-1 -1 0 -1")
  local srv_cpu sipp_cpu fg0 fg1 us_per_call
  srv_cpu=$(awk -v a="$s0" -v b="$s1" -v w="$wall_ms" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 100000 / hz / w }')
  sipp_cpu=$(awk -v b="$sipp_ticks" -v w="$wall_ms" -v hz="$hz" 'BEGIN { printf "%.1f", b * 100000 / hz / w }')
  # server CPU time per call at the rate actually offered
  us_per_call=$(awk -v c="$srv_cpu" -v r="$achieved" 'BEGIN { if (r > 0) printf "%.0f", c * 10000 / r; else print "null" }')
  fg0=$(awk -v a="$c00" -v b="$c01" -v s="$((s1 - s0))" -v w="$wall_ms" -v hz="$hz" 'BEGIN { x = (b - a - s) * 100000 / hz / w; if (x < 0) x = 0; printf "%.1f", x }')
  fg1=$(awk -v a="$c10" -v b="$c11" -v s="$sipp_ticks" -v w="$wall_ms" -v hz="$hz" 'BEGIN { x = (b - a - s) * 100000 / hz / w; if (x < 0) x = 0; printf "%.1f", x }')
  local fail_ppm=$((lost * 1000000 / calls))
  # retransmittable requests per call: INVITE (x2 with auth), BYE, the UAS's 200
  local per_call=4
  [[ $name == kamailio-noauth ]] && per_call=3
  local retrans_ppm=$(((retrans + uas_retrans) * 1000000 / (per_call * calls)))
  local verdict=pass
  if ((fail_ppm > fail_limit_ppm)); then
    verdict=fail
  elif ((retrans_ppm > fail_limit_ppm)); then
    verdict=retrans
  elif ((achieved * 100 < rate * 90)); then
    if awk -v c="$sipp_cpu" 'BEGIN { exit !(c >= 90) }'; then verdict=loader-bound; else verdict=slow; fi
  fi
  local contended=false
  if awk -v a="$fg0" -v b="$fg1" 'BEGIN { exit !(a > 10 || b > 10) }'; then contended=true; fi
  local errs=""
  if ((lost > 0 || uas_failed > 0)); then
    errs=$(echo "uac: $(failed_kinds "$dir"/uac*-stat.csv)  uas: $(failed_kinds "$dir/uas-stat.csv")"
           summarize_errors "$dir"/uac*-errors.log 3; summarize_errors "$dir"/uas-errors.log 2 | sed 's/^/uas: /')
  fi

  step_verdict=$verdict step_p50=$p50 step_p99=$p99 step_cpu=$srv_cpu step_achieved=$achieved
  step_sipp_cpu=$sipp_cpu step_us=$us_per_call step_contended=$contended step_503=""
  [[ $errs == *"503 Service Unavailable"* ]] && step_503=" (503s)"
  printf '  %-15s %6d/s %3ds  achieved %5d/s  ok %7d  failed %6d (%6.3f%%)  retrans %5d+%d  setup p50 %4s ms  p99 %5s ms  server CPU %5.1f%%  sipp CPU %5.1f%%  other cpu0 %4.1f%% cpu1 %4.1f%%  udp drops srv/uas/uac %d/%d/%d  %s\n' \
    "$name" "$rate" "$step_s" "$achieved" "$ok" "$lost" "$(awk -v p="$fail_ppm" 'BEGIN { print p / 10000 }')" "$retrans" "$uas_retrans" \
    "$p50" "$p99" "$srv_cpu" "$sipp_cpu" "$fg0" "$fg1" "$drops_srv" "$drops_uas" "$drops_uac" "$verdict" >&2
  [[ -n $errs ]] && printf '%s\n' "$errs" | sed 's/^/      /' >&2
  steps_json+="${steps_json:+,}{\"rate\":$rate,\"seconds\":$step_s,\"calls\":$calls,\"outgoing\":$outgoing,\"ok\":$ok,\"failed\":$lost,\"fail_ppm\":$fail_ppm,\"retransmissions_uac\":$retrans,\"retransmissions_uas\":$uas_retrans,\"uas_ok\":$uas_ok,\"uas_failed\":$uas_failed,\"achieved_rate\":$achieved,\"p50_ms\":$p50,\"p99_ms\":$p99,\"bye_p99_ms\":$bye_p99,\"server_cpu_pct\":$srv_cpu,\"server_cpu_us_per_call\":$us_per_call,\"sipp_cpu_pct\":$sipp_cpu,\"other_load_cpu0_pct\":$fg0,\"other_load_cpu1_pct\":$fg1,\"udp_drops_server\":$drops_srv,\"udp_drops_uas\":$drops_uas,\"udp_drops_uac\":$drops_uac,\"contended\":$contended,\"sipp_exit\":$rc,\"verdict\":\"$verdict\",\"errors\":$(json_str "$errs")}"
  # let the server drain retransmissions and expiring transactions
  if [[ $verdict == pass ]]; then sleep 2; else sleep 6; fi
}

# ------------------------------------------------------------ server start
# start_SERVER PORT -> sets srv_pid, or returns 1 with srv_error
start_kamailio() {
  local sport=$1 name=$2 d="$tmp/$2" extra=()
  mkdir -p "$d"
  kamailio_check || return 1
  [[ $name == kamailio-noauth ]] && extra=(-A WITH_NO_CALL_AUTH)
  nice -n "$nice_level" taskset -c 0 kamailio -DD -E -m 1024 -M 16 -Y "$d" -f "$here/kamailio/kamailio-proxy.cfg" \
    -A SIP_PORT="$sport" -A "DBURL=\"sqlite://$tmp/kamailio.sqlite\"" -A CHILDREN="$kam_children" "${extra[@]}" \
    >"$d/server.log" 2>&1 &
  srv_pid=$!
  started_pids+=("$srv_pid")
}

# ---------------------------------------------------------------- main
users=$((callers + callees))
log "callers: $callers, callees: $callees, hold: ${hold_ms} ms, step: ${step_s}s, rates: $rates, ref: $ref_rate/s, transport: $transport, tmp: $tmp"
"$here/kamailio/mkdb.sh" "$users" "$tmp" 2>/dev/null
make_csvs

# build first, so that compiling never overlaps a measurement
if [[ ,$servers, == *,cusaxd,* ]]; then build_cusaxd || true; fi

declare -A R_status R_max R_maxshort R_p50 R_p99 R_cpuref R_usref R_cpumax R_sippmax R_limit R_steps R_contended
IFS=',' read -r -a server_list <<<"$servers"
si=0
for s in "${server_list[@]}"; do
  sport=$((port + 20 * si)); si=$((si + 1))
  srv_pid="" srv_error="" steps_json="" smoke_error=""
  log "$s: starting on 127.0.0.1:$sport (CPU 0)"
  case $s in
    kamailio|kamailio-noauth) start_kamailio "$sport" "$s" || true ;;
    cusaxd)
      # no TLS listeners (the defaults 5061/5223 may be taken on a shared
      # machine); read by cusaxd serve as DATA_DIR/cusaxd.toml
      mkdir -p "$tmp/cusaxd/data"
      printf '[sip]\ntls_port = 0\n\n[xmpp]\ntls_port = 0\n' >"$tmp/cusaxd/data/cusaxd.toml"
      # warnings only (Kamailio runs with debug=1, errors only); cusaxd's info
      # level logs every authenticated request
      RUST_LOG=${RUST_LOG:-warn} start_cusaxd "$sport" || true ;;
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
  # registrations: callees from the UAS port, callers from their UAC's port
  mkdir -p "$tmp/$s/register"
  reg_ok=1
  register_from "$sport" "$tmp/callees.csv" "$(uas_port "$sport")" "$tmp/$s/register" || reg_ok=0
  for ((i = 0; i < callees && reg_ok; i++)); do
    register_from "$sport" "$tmp/callers$i.csv" "$(uac_port "$sport" "$i")" "$tmp/$s/register" || reg_ok=0
  done
  if ((!reg_ok)); then
    keep=1
    R_status[$s]="failed: REGISTER ($(summarize_errors "$tmp/$s/register"/*.err 1 | sed 's/^[0-9]* //'); logs in $tmp/$s/register)"
    log "$s: ${R_status[$s]}"
    stop_pid "$srv_pid"; continue
  fi
  log "$s: registered $callees callee(s) and $callers callers"
  if ! smoke_call "$s" "$sport"; then
    keep=1
    R_status[$s]="failed: $smoke_error (messages: $tmp/$s/smoke/*.msg)"
    log "$s: ${R_status[$s]}"
    log "$s: UAC message log (tail):"
    tail -40 "$tmp/$s/smoke/uac0.msg" 2>/dev/null | sed 's/^/    /' >&2 || true
    stop_pid "$srv_pid"; continue
  fi
  log "$s: traced call ok"
  wait_idle "$idle_wait" || true
  log "$s: up (pid $srv_pid); stepping"

  repeats=0 best=0 best_cpu=0 best_sipp=0 first_fail=0 have_ref=0 contended=false limit="" last_cpu=0 last_sipp=0
  for rate in $rates; do
    run_step "$s" "$srv_pid" "$sport" "$rate"
    if [[ $step_verdict != pass && $step_contended == true ]] && ((repeats < 2)); then
      # another process took a benchmark core: wait for quiet cores, once more
      log "$s: $rate/s failed while other load shared a benchmark core; waiting for idle cores and repeating it"
      wait_idle 60 || true
      repeats=$((repeats + 1))
      run_step "$s" "$srv_pid" "$sport" "$rate"
    fi
    [[ $steps_json == *'"contended":true'* ]] && contended=true
    if ((rate == ref_rate)); then
      have_ref=1 R_p50[$s]=$step_p50 R_p99[$s]=$step_p99 R_cpuref[$s]=$step_cpu R_usref[$s]=$step_us
    fi
    last_cpu=$step_cpu last_sipp=$step_sipp_cpu
    if [[ $step_verdict == pass ]]; then
      best=$rate best_cpu=$step_cpu best_sipp=$step_sipp_cpu
    else
      first_fail=$rate fail_cpu=$step_cpu fail_sipp=$step_sipp_cpu fail_contended=$step_contended fail_503=$step_503; break
    fi
    kill -0 "$srv_pid" 2>/dev/null || { log "$s: server died"; break; }
  done
  # bisect between the last passing and the first failing rate
  lo=$best hi=$first_fail
  for ((rk = 0; rk < refine && hi > 0 && hi - lo > 200; rk++)); do
    kill -0 "$srv_pid" 2>/dev/null || break
    mid=$(((lo + hi) / 2 / 50 * 50))
    run_step "$s" "$srv_pid" "$sport" "$mid"
    if [[ $step_verdict != pass && $step_contended == true ]] && ((repeats < 2)); then
      log "$s: $mid/s failed while other load shared a benchmark core; waiting for idle cores and repeating it"
      wait_idle 60 || true
      repeats=$((repeats + 1))
      run_step "$s" "$srv_pid" "$sport" "$mid"
    fi
    if [[ $step_verdict == pass ]]; then lo=$mid best=$mid best_cpu=$step_cpu best_sipp=$step_sipp_cpu
    else hi=$mid fail_cpu=$step_cpu fail_sipp=$step_sipp_cpu fail_contended=$step_contended fail_503=$step_503; fi
  done
  # what stopped it: the core that was (nearly) full at the first failing step
  if ((first_fail > 0)); then
    limit=$(awk -v s="$fail_cpu" -v l="$fail_sipp" -v c="$fail_contended" 'BEGIN {
      a = (s >= 85); b = (l >= 85)
      print (a && b) ? "server+loader" : a ? "server" : b ? "loader" : c == "true" ? "other load" : "neither core full" }')$fail_503
  else
    limit="not reached"
  fi
  # the maximum of the short steps must hold for confirm_s: transaction state
  # that lingers 32 s after a call (RFC 3261 timers J, K, L) builds up only
  # in longer runs
  best_short=$best confirmed=null
  if ((confirm_s > 0 && best > 0)) && kill -0 "$srv_pid" 2>/dev/null; then
    saved_step_s=$step_s step_s=$confirm_s try=$best
    for ((ck = 0; ck < 4; ck++)); do
      log "$s: confirming $try calls/s for ${confirm_s}s (after a ${confirm_gap}s pause)"
      sleep "$confirm_gap"
      run_step "$s" "$srv_pid" "$sport" "$try"
      if [[ $step_verdict != pass && $step_contended == true ]] && ((repeats < 2)) && kill -0 "$srv_pid" 2>/dev/null; then
        log "$s: $try/s failed while other load shared a benchmark core; waiting for idle cores and repeating it"
        wait_idle 60 || true
        repeats=$((repeats + 1))
        sleep "$confirm_gap"
        run_step "$s" "$srv_pid" "$sport" "$try"
      fi
      if [[ $step_verdict == pass ]]; then confirmed=$try best=$try best_cpu=$step_cpu best_sipp=$step_sipp_cpu; break; fi
      kill -0 "$srv_pid" 2>/dev/null || break
      ((ck == 0)) && limit="$limit; ${confirm_s}s: $step_verdict at $try$step_503"
      try=$((try * 9 / 10 / 50 * 50))
    done
    step_s=$saved_step_s
    [[ $confirmed == null ]] && best=0 best_cpu=0 best_sipp=0
  fi
  # latency at the reference rate even when stepping stopped below it
  if ((!have_ref)) && kill -0 "$srv_pid" 2>/dev/null; then
    run_step "$s" "$srv_pid" "$sport" "$ref_rate"
    R_p50[$s]=$step_p50 R_p99[$s]=$step_p99 R_cpuref[$s]=$step_cpu R_usref[$s]=$step_us
  fi
  [[ $steps_json == *'"contended":true'* ]] && contended=true
  R_status[$s]=ok R_max[$s]=$best R_maxshort[$s]=$best_short R_cpumax[$s]=$best_cpu R_sippmax[$s]=$best_sipp R_limit[$s]=$limit
  R_steps[$s]=$steps_json R_contended[$s]=$contended
  stop_pid "$srv_pid"
done

# ---------------------------------------------------------------- report
ratio() { # a/b or null
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || a == "null" || b == "" || b == "null" || b + 0 <= 0 || a + 0 < 0) print "null"; else printf "%.2f", a / b }'
}
ms() { local v=${1:--1}; if ((v < 0)); then echo n/a; elif ((v == 0)); then echo "<1"; else echo "$v ms"; fi; }
echo
echo "Calls through the proxy (INVITE/407/ACK/INVITE/100/180/200/ACK/BYE/200), $callers callers -> $callees callee(s), hold ${hold_ms} ms, transport $transport, ${step_s}s steps"
echo "server on CPU 0, sipp UAS + UAC on CPU 1; latency and CPU at the reference rate $ref_rate calls/s"
if ((confirm_s > 0)); then echo "max cps: the highest rate that held for ${confirm_s}s; ${step_s}s max: the highest rate of the ${step_s}s steps; CPU% @max of the former"; fi
printf '%-16s %-7s %9s %9s %10s %10s %10s %12s %10s %10s  %-18s %s\n' server status "max cps" "${step_s}s max" "p50 @ref" "p99 @ref" "CPU% @ref" "CPU us/call" "CPU% @max" "sipp% @max" "limited by" note
for s in "${server_list[@]}"; do
  st=${R_status[$s]:-skipped}
  if [[ $st == ok ]]; then
    note=""; [[ ${R_contended[$s]} == true ]] && note="other load on a benchmark core: numbers unreliable"
    printf '%-16s %-7s %9s %9s %10s %10s %10s %12s %10s %10s  %-18s %s\n' "$s" ok "${R_max[$s]}" "${R_maxshort[$s]}" "$(ms "${R_p50[$s]:-}")" \
      "$(ms "${R_p99[$s]:-}")" "${R_cpuref[$s]:-n/a}" "${R_usref[$s]:-n/a}" "${R_cpumax[$s]}" "${R_sippmax[$s]}" "${R_limit[$s]}" "$note"
  else
    printf '%-16s %s\n' "$s" "$st"
  fi
done
k=kamailio c=cusaxd
r_max=$(ratio "${R_max[$c]:-}" "${R_max[$k]:-}")
r_p50=$(ratio "${R_p50[$c]:-}" "${R_p50[$k]:-}")
r_p99=$(ratio "${R_p99[$c]:-}" "${R_p99[$k]:-}")
r_cpu=$(ratio "${R_cpuref[$c]:-}" "${R_cpuref[$k]:-}")
if [[ ${R_status[$k]:-} == ok && ${R_status[$c]:-} == ok ]]; then
  echo "cusaxd/kamailio: max calls/s x$r_max, setup p50 x$r_p50, p99 x$r_p99, CPU at $ref_rate/s x$r_cpu (ratios of 0 ms latencies are null)"
  case ${R_limit[$k]}/${R_limit[$c]} in
    *loader*) echo "note: the loader core (sipp) was full at a limit: the max ratio is not a server comparison; compare CPU at the reference rate" ;;
  esac
fi

if [[ -n $out ]]; then
  {
    printf '{"benchmark":"sip-calls","callers":%d,"callees":%d,"hold_ms":%d,"transport":"%s","step_seconds":%d,"confirm_seconds":%d,"fail_limit_pct":0.1,"reference_rate":%d,"nice":%d,' \
      "$callers" "$callees" "$hold_ms" "$transport" "$step_s" "$confirm_s" "$ref_rate" "$nice_level"
    printf '"host":{"cpus":%d,"kernel":"%s","sipp":"%s","kamailio":"%s","kamailio_children":%d},"servers":{' \
      "$ncpu" "$(uname -r)" "$(sipp -v 2>/dev/null | awk '/SIPp v/ { print $2; exit }' | tr -d '\r')" \
      "$(kamailio -v 2>/dev/null | awk 'NR == 1 { print $3 }')" "$kam_children"
    first=1
    for s in "${server_list[@]}"; do
      ((first)) || printf ','; first=0
      st=${R_status[$s]:-skipped}
      if [[ $st == ok ]]; then
        printf '"%s":{"status":"ok","max_rate":%d,"max_rate_short_steps":%d,"limited_by":"%s","p50_ms_at_ref":%s,"p99_ms_at_ref":%s,"server_cpu_pct_at_ref":%s,"server_cpu_us_per_call_at_ref":%s,"server_cpu_pct_at_max":%s,"sipp_cpu_pct_at_max":%s,"contended":%s,"steps":[%s]}' \
          "$s" "${R_max[$s]}" "${R_maxshort[$s]}" "${R_limit[$s]}" "${R_p50[$s]:-null}" "${R_p99[$s]:-null}" "${R_cpuref[$s]:-null}" "${R_usref[$s]:-null}" \
          "${R_cpumax[$s]}" "${R_sippmax[$s]}" "${R_contended[$s]}" "${R_steps[$s]}"
      else
        printf '"%s":{"status":%s}' "$s" "$(json_str "$st")"
      fi
    done
    printf '},"ratio_cusaxd_over_kamailio":{"max_rate":%s,"p50":%s,"p99":%s,"cpu_at_ref":%s}}\n' "$r_max" "$r_p50" "$r_p99" "$r_cpu"
  } >"$out"
  log "summary written to $out"
fi
