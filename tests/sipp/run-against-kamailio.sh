#!/usr/bin/env bash
# Validate the registrar scenarios of this directory against Kamailio
# (bench/kamailio/kamailio-registrar.cfg), over UDP and TCP.
#
#   tests/sipp/run-against-kamailio.sh [--port N] [--keep]
#
# Starts a private Kamailio on 127.0.0.1:PORT (default 25060) with a fresh
# sqlite subscriber db, runs every scenario and prints one line per check and
# a closing "N passed, N failed" line. Exit status 0 only if all passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=25060
keep=0
while (($#)); do
  case $1 in
    --port) port=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for b in sipp kamailio sqlite3; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y sip-tester kamailio kamailio-sqlite-modules sqlite3)" >&2; exit 1; }
done

tmp=$(mktemp -d)
kam_pid=
cleanup() {
  if [[ -n $kam_pid ]] && kill -0 "$kam_pid" 2>/dev/null; then
    kill "$kam_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$kam_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$kam_pid" 2>/dev/null || true
  fi
  if ((keep)); then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM

"$root/bench/kamailio/mkdb.sh" 20 "$tmp" 2>/dev/null
kamailio -DD -E -m 256 -M 16 -Y "$tmp" -f "$root/bench/kamailio/kamailio-registrar.cfg" \
  -A SIP_PORT="$port" -A "DBURL=\"sqlite://$tmp/kamailio.sqlite\"" -A CHILDREN=2 \
  >"$tmp/kamailio.log" 2>&1 &
kam_pid=$!

pass=0 fail=0
# run NAME EXPECT(ok|fail) SCENARIO TRANSPORT CSV [extra sipp args...]
run() {
  local name=$1 expect=$2 sc=$3 tr=$4 csv=$5; shift 5
  local log="$tmp/$name.log" rc=0
  # every run bounded: one call per CSV line given with -m, 20 s overall
  (cd "$tmp" && timeout 30 sipp "127.0.0.1:$port" -sf "$here/$sc" -t "$tr" \
      -inf "$csv" -au '[field0]' -ap '[field1]' -auth_uri bench.local \
      -nd -nostdin -r 50 -recv_timeout 5000 -timeout 20s -timeout_error \
      -trace_err -error_file "$tmp/$name.err" "$@" >"$log" 2>&1) || rc=$?
  if { [[ $expect == ok ]] && ((rc == 0)); } || { [[ $expect == fail ]] && ((rc != 0)); }; then
    pass=$((pass + 1)); printf 'ok   %s\n' "$name"
  else
    fail=$((fail + 1)); printf 'FAIL %s (sipp exit %d, see %s)\n' "$name" "$rc" "$tmp/$name.err"
    keep=1
  fi
}

# wait (bounded) for the server to answer OPTIONS
up=0
for _ in $(seq 20); do
  if (cd "$tmp" && timeout 5 sipp "127.0.0.1:$port" -sf "$here/options.xml" -t u1 -m 1 \
        -nd -nostdin -recv_timeout 500 -timeout 3s >/dev/null 2>&1); then up=1; break; fi
  kill -0 "$kam_pid" 2>/dev/null || break
  sleep 0.5
done
((up)) || { echo "kamailio did not come up:" >&2; tail -20 "$tmp/kamailio.log" >&2; exit 1; }

users="$tmp/users.sipp.csv"
head -4 "$users" >"$tmp/u3.csv"              # SEQUENTIAL + user1..user3
printf 'SEQUENTIAL\nuser9;pw-9;bench.local\n' >"$tmp/u9.csv"
printf 'SEQUENTIAL\nnosuchuser;pw-x;bench.local\n' >"$tmp/unknown.csv"

for tr in u1 t1; do
  # fixed local port so that unregister.xml removes what register_digest.xml added
  lp=$((port + 10 + ${#tr}))
  [[ $tr == t1 ]] && lp=$((port + 20))
  run "options-$tr"            ok   options.xml                 "$tr" "$users" -m 1
  run "unregister_all-$tr"     ok   unregister_all.xml          "$tr" "$tmp/u3.csv" -m 3
  run "register_digest-$tr"    ok   register_digest.xml         "$tr" "$tmp/u3.csv" -m 3 -p "$lp"
  run "register_query-$tr"     ok   register_query.xml          "$tr" "$tmp/u3.csv" -m 3
  run "unregister-$tr"         ok   unregister.xml              "$tr" "$tmp/u3.csv" -m 3 -p "$lp"
  run "query_after_unreg-$tr"  fail register_query.xml          "$tr" "$tmp/u3.csv" -m 1
  run "register_digest2-$tr"   ok   register_digest.xml         "$tr" "$tmp/u3.csv" -m 3
  run "unregister_all2-$tr"    ok   unregister_all.xml          "$tr" "$tmp/u3.csv" -m 3
  run "wrong_password-$tr"     ok   register_wrong_password.xml "$tr" "$tmp/u9.csv" -m 1 -ap 'wrong-[field1]'
  run "right_pw_not_wrong-$tr" fail register_wrong_password.xml "$tr" "$tmp/u9.csv" -m 1
  run "unknown_user-$tr"       fail register_digest.xml         "$tr" "$tmp/unknown.csv" -m 1
  run "register_locked-$tr"    ok   register_locked.xml         "$tr" "$tmp/locked.sipp.csv" -m 1
  run "locked_not_open-$tr"    fail register_digest.xml         "$tr" "$tmp/locked.sipp.csv" -m 1
done

echo "sipp scenarios vs kamailio: $pass passed, $fail failed"
((fail == 0))
