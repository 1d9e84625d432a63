#!/usr/bin/env bash
# Prove the baresip call harness (crates/sip/tests/baresip.rs) against an
# independent proxy: Kamailio with bench/kamailio/kamailio-proxy.cfg (record-
# routing, transaction-stateful, digest auth from a fresh sqlite database).
#
#   tests/baresip/run-against-kamailio.sh [--port N] [--keep]
#
# Builds the test first, starts Kamailio on 127.0.0.1:N (UDP and TCP; default:
# a free port), then runs the ignored test `external_proxy`: two baresip
# phones (user1 over TCP, user2 over UDP) register, call each other by AOR in
# both directions with auto answer, hang up, and every call state baresip
# reports is checked. Exit status is the test's. Bounded: the test run is
# limited to 180 s; only the Kamailio process started here is stopped.
# Needs baresip, kamailio, kamailio-sqlite-modules, sqlite3 and cargo.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=""
keep=0
while (($#)); do
  case $1 in
    --port) port=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for b in baresip kamailio sqlite3 cargo python3; do
  command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 1; }
done

if [[ -z $port ]]; then
  # A port free for both TCP and UDP on loopback.
  port=$(python3 - <<'EOF'
import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        u.close(); t.close()
    print(p); break
EOF
)
  [[ -n $port ]] || { echo "no free port found" >&2; exit 1; }
fi

cd "$root"
echo "building the baresip test ..." >&2
cargo test -p cusax-sip --test baresip --no-run --quiet

tmp=$(mktemp -d)
kam_pid=""
cleanup() {
  if [[ -n $kam_pid ]] && kill -0 "$kam_pid" 2>/dev/null; then
    kill "$kam_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$kam_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$kam_pid" 2>/dev/null || true
  fi
  if ((keep)); then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/bench/kamailio/mkdb.sh" 2 "$tmp" 2>/dev/null
kamailio -DD -E -m 256 -M 16 -Y "$tmp" -f "$root/bench/kamailio/kamailio-proxy.cfg" \
  -A SIP_PORT="$port" -A "DBURL=\"sqlite://$tmp/kamailio.sqlite\"" -A CHILDREN=2 \
  >"$tmp/kamailio.log" 2>&1 &
kam_pid=$!

# Kamailio binds UDP and TCP before it forks its workers; wait (bounded) until
# the TCP listener accepts.
up=0
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
  kill -0 "$kam_pid" 2>/dev/null || break
  sleep 0.1
done
((up)) || { echo "kamailio did not come up:" >&2; tail -20 "$tmp/kamailio.log" >&2; exit 1; }
echo "kamailio (pid $kam_pid) on 127.0.0.1:$port" >&2

rc=0
CUSAX_BARESIP_PROXY="127.0.0.1:$port" \
CUSAX_BARESIP_DOMAIN=bench.local \
CUSAX_BARESIP_USERS="user1:pw-1,user2:pw-2" \
CUSAX_BARESIP_LOG="$tmp/kamailio.log" \
  timeout 180 cargo test -p cusax-sip --test baresip --quiet -- \
    --ignored --exact external_proxy --nocapture || rc=$?

if ((rc == 0)); then
  echo "baresip calls via kamailio proxy: passed"
else
  keep=1
  echo "baresip calls via kamailio proxy: FAILED (exit $rc)"
fi
exit "$rc"
