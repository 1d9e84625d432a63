#!/usr/bin/env bash
# Validate the call scenarios (uac_*.xml against uas_*.xml) through Kamailio
# as a record-routing, transaction-stateful proxy with digest auth
# (bench/kamailio/kamailio-proxy.cfg), over UDP and TCP.
#
#   tests/sipp/run-calls-against-kamailio.sh [--port N] [--keep]
#
# Per transport: register the callee (user2) with register_digest.xml from
# the port the UAS will listen on, then per pair start the UAS scenario in
# the background and place one call from user1. Ends with "N passed,
# N failed"; exit 0 only if all passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=25160
keep=0
while (($#)); do
  case $1 in
    --port) port=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for b in sipp kamailio sqlite3; do
  command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  if ((keep)); then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/bench/kamailio/mkdb.sh" 5 "$tmp" 2>/dev/null
kamailio -DD -E -m 256 -M 16 -Y "$tmp" -f "$root/bench/kamailio/kamailio-proxy.cfg" \
  -A SIP_PORT="$port" -A "DBURL=\"sqlite://$tmp/kamailio.sqlite\"" -A CHILDREN=2 \
  >"$tmp/kamailio.log" 2>&1 &
pids+=($!)
kam_pid=$!

up=0
for _ in $(seq 20); do
  if (cd "$tmp" && timeout 5 sipp "127.0.0.1:$port" -sf "$here/options.xml" -t u1 -m 1 \
        -nd -nostdin -recv_timeout 500 -timeout 3s >/dev/null 2>&1); then up=1; break; fi
  kill -0 "$kam_pid" 2>/dev/null || break
  sleep 0.5
done
((up)) || { echo "kamailio did not come up:" >&2; tail -20 "$tmp/kamailio.log" >&2; exit 1; }

printf 'SEQUENTIAL\nuser1;pw-1;bench.local\n' >"$tmp/caller.csv"
printf 'SEQUENTIAL\nuser2;pw-2;bench.local\n' >"$tmp/callee.csv"
pass=0 fail=0
result() { # NAME OK(0/1) DETAIL
  if (($2)); then pass=$((pass + 1)); printf 'ok   %s\n' "$1"
  else fail=$((fail + 1)); keep=1; printf 'FAIL %s (%s)\n' "$1" "$3"; fi
}

for tr in u1 t1; do
  uas_port=$((port + 10))
  [[ $tr == t1 ]] && uas_port=$((port + 20))
  rc=0
  (cd "$tmp" && timeout 20 sipp "127.0.0.1:$port" -sf "$here/register_digest.xml" -t "$tr" \
     -inf "$tmp/callee.csv" -au '[field0]' -ap '[field1]' -auth_uri bench.local -p "$uas_port" \
     -m 1 -nd -nostdin -recv_timeout 5000 -timeout 15s -timeout_error >/dev/null 2>&1) || rc=$?
  result "register-callee-$tr" $((rc == 0)) "sipp exit $rc"

  for pair in uac_call_auth.xml:uas_answer.xml uac_call_busy.xml:uas_busy.xml uac_cancel.xml:uas_ring_cancel.xml; do
    uac=${pair%%:*} uas=${pair##*:} name="${uac%.xml}+${uas%.xml}-$tr"
    (cd "$tmp" && exec timeout 25 sipp -sf "$here/$uas" -t "$tr" -p "$uas_port" -m 1 -nostdin \
       -timeout 20s -timeout_error -trace_err -error_file "$tmp/$name.uas.err" \
       -trace_msg -message_file "$tmp/$name.uas.msg" >/dev/null 2>&1) &
    uas_pid=$!
    pids+=("$uas_pid")
    sleep 0.5
    rc=0
    (cd "$tmp" && timeout 25 sipp "127.0.0.1:$port" -sf "$here/$uac" -t "$tr" -s user2 \
       -inf "$tmp/caller.csv" -au '[field0]' -ap '[field1]' -m 1 -d 200 -nd -nostdin \
       -recv_timeout 10000 -timeout 20s -timeout_error -trace_err -error_file "$tmp/$name.uac.err" \
       -trace_msg -message_file "$tmp/$name.uac.msg" >/dev/null 2>&1) || rc=$?
    urc=0
    wait "$uas_pid" || urc=$?
    result "$name" $((rc == 0 && urc == 0)) "uac exit $rc, uas exit $urc; see $tmp/$name.*"
  done
done

echo "sipp call scenarios via kamailio proxy: $pass passed, $fail failed"
((fail == 0))
