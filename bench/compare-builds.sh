#!/usr/bin/env bash
# Two builds of cusaxd, one run: the REGISTER, call and XMPP benchmarks for an old and a new
# binary, back to back and in alternating order, so that a refactor can be held to "within N %
# of before" (server CPU at a fixed rate, latency, XMPP throughput and memory).
#
#   bench/compare-builds.sh --old-dir DIR --new-dir DIR [--out FILE] [--tolerance PCT]
#                           [--rounds N] [--quick]
#
# DIR holds release binaries `cusaxd`, `cusaxctl` and `xmpp-load` (package cusax-xmpp-load), e.g.
#   git worktree add /tmp/old REV && (cd /tmp/old && cargo build --release -p cusaxd -p cusaxctl
#   -p cusax-xmpp-load) && bench/compare-builds.sh --old-dir /tmp/old/target/release
#   --new-dir target/release
#
# Each benchmark runs with `--servers cusaxd` (bench/sip-register.sh, bench/sip-calls.sh,
# bench/xmpp.sh: same pinning, CPU 0 for the server, CPU 1 for the load, same idle wait).
# `--rounds N` (default 1) repeats old/new, new/old alternately and keeps every sample; the
# table shows the median of each figure and new/old. `--quick` shortens every step (for a
# smoke run of this script; too short for a verdict). A figure is "worse" when new is more
# than PCT % (default 5) worse than old in its own direction (CPU, latency, RSS: lower is
# better; rates: higher is better). Exit status 0 when nothing is worse, 1 otherwise, 2 when
# a benchmark did not produce its figures.
set -euo pipefail
cd "$(dirname "$0")/.."

old_dir="" new_dir="" out="" tol=5 rounds=1 quick=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --old-dir) old_dir=$2; shift 2 ;;
    --new-dir) new_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tolerance) tol=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -n $old_dir && -n $new_dir ]] || { echo "--old-dir and --new-dir are required" >&2; exit 2; }
for d in "$old_dir" "$new_dir"; do
  for b in cusaxd cusaxctl xmpp-load; do
    [[ -x $d/$b ]] || { echo "$d/$b is missing (cargo build --release -p cusaxd -p cusaxctl -p cusax-xmpp-load)" >&2; exit 2; }
  done
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ((quick)); then
  reg_args=(--rates 4000 --step-seconds 3 --refine 0 --idle-wait 30)
  call_args=(--rates 500 --ref-rate 500 --step-seconds 3 --confirm-seconds 3 --refine 0 --idle-wait 30)
  xmpp_args=(--users 1000 --idle-connections 1000 --pairs 100 --login-seconds 3 --msg-seconds 3 --idle-wait 30)
else
  reg_args=(--rates 10000 --step-seconds 10 --refine 0)
  call_args=(--rates 1000 --ref-rate 1000 --step-seconds 10 --confirm-seconds 10 --refine 0)
  xmpp_args=(--users 5000 --idle-connections 5000 --login-seconds 10 --msg-seconds 10)
fi

# run BENCH LABEL DIR ROUND -> JSON file of that run
run() {
  local bench=$1 label=$2 dir=$3 round=$4 json="$tmp/$1-$2-$4.json" extra=()
  case $bench in
    register) extra=("${reg_args[@]}"); script=bench/sip-register.sh ;;
    calls) extra=("${call_args[@]}"); script=bench/sip-calls.sh ;;
    xmpp) extra=("${xmpp_args[@]}" --loader-bin "$dir/xmpp-load"); script=bench/xmpp.sh ;;
  esac
  echo "== $bench: $label (round $round)" >&2
  if ! "$script" --servers cusaxd --cusaxd-bin "$dir/cusaxd" --cusaxctl-bin "$dir/cusaxctl" \
      "${extra[@]}" --out "$json" >"$tmp/$bench-$label-$round.log" 2>&1; then
    echo "   $script failed; its log:" >&2
    tail -20 "$tmp/$bench-$label-$round.log" >&2
  fi
  [[ -s $json ]] && echo "$json"
}

declare -a files=()
for ((r = 1; r <= rounds; r++)); do
  for bench in register calls xmpp; do
    if ((r % 2)); then order=(old new); else order=(new old); fi
    for label in "${order[@]}"; do
      dir=$old_dir; [[ $label == new ]] && dir=$new_dir
      if f=$(run "$bench" "$label" "$dir" "$r"); then files+=("$bench:$label:$f"); fi
    done
  done
done

python3 - "$tol" "$out" "${files[@]}" <<'EOF'
import json, statistics, sys
tol, out, entries = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
# figure name -> (benchmark, JSON key under .servers.cusaxd or top level, lower is better)
FIGURES = [
    ("REGISTER: server CPU % at 10k pairs/s", "register", "server_cpu_pct_at_ref", True),
    ("REGISTER: p99 ms at 10k pairs/s", "register", "p99_ms_at_ref", True),
    ("calls: server CPU us per call", "calls", "server_cpu_us_per_call_at_ref", True),
    ("calls: setup p99 ms", "calls", "p99_ms_at_ref", True),
    ("XMPP: logins/s", "xmpp", "logins_per_s", False),
    ("XMPP: messages/s", "xmpp", "msgs_per_s", False),
    ("XMPP: RSS KiB per idle connection", "xmpp", "rss_kib_per_idle_conn", True),
    ("XMPP: message p99 ms at fixed rate", "xmpp", "fixed_rate_p99_ms", True),
]
samples = {}
for e in entries:
    bench, label, path = e.split(":", 2)
    with open(path) as f:
        doc = json.load(f)
    srv = doc.get("servers", doc).get("cusaxd", {})
    if srv.get("status") != "ok":
        continue
    for name, b, key, _ in FIGURES:
        v = srv.get(key)
        if b == bench and isinstance(v, (int, float)):
            samples.setdefault((name, label), []).append(float(v))
rows, worse, missing = [], [], []
for name, _, _, lower in FIGURES:
    o, n = samples.get((name, "old")), samples.get((name, "new"))
    if not o or not n:
        missing.append(name)
        rows.append((name, None, None, None, "no figures"))
        continue
    mo, mn = statistics.median(o), statistics.median(n)
    ratio = mn / mo if mo else None
    if ratio is None:
        verdict = "old is 0"
    else:
        change = (ratio - 1) * 100 if lower else (1 - ratio) * 100  # > 0: new is worse
        verdict = f"worse by {change:.1f} %" if change > tol else "ok"
        if change > tol:
            worse.append(name)
    rows.append((name, mo, mn, ratio, verdict))
print(f"{'figure':44} {'old':>10} {'new':>10} {'new/old':>8}  verdict (tolerance {tol:g} %)")
for name, mo, mn, ratio, verdict in rows:
    f = lambda x: "-" if x is None else f"{x:.2f}"
    print(f"{name:44} {f(mo):>10} {f(mn):>10} {f(ratio):>8}  {verdict}")
if out:
    with open(out, "w") as fh:
        json.dump({"tolerance_pct": tol, "rows": [
            {"figure": r[0], "old": r[1], "new": r[2], "new_over_old": r[3], "verdict": r[4]} for r in rows
        ], "samples": {f"{k[0]} / {k[1]}": v for k, v in samples.items()}}, fh, indent=1)
sys.exit(2 if missing else (1 if worse else 0))
EOF
