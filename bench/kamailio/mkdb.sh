#!/usr/bin/env bash
# Build a Kamailio sqlite subscriber database with N benchmark users.
#
#   bench/kamailio/mkdb.sh N [OUTDIR]
#
# Creates in OUTDIR (default: current directory):
#   kamailio.sqlite   version + subscriber tables (schema.sql), users user1..userN@bench.local,
#                     password pw-<n>, only HA1 stored (md5(user:realm:password),
#                     realm bench.local), the plaintext password column left empty
#   users.sipp.csv    sipp -inf file: user;password;domain (SEQUENTIAL)
#   users.csv         user@domain,password per line (cusaxctl user import)
#   locked.sipp.csv   sipp -inf file with the locked test account only
#
# Extra test accounts (always added): "locked1" (password pw-locked, locked=1)
# used by tests/sipp/register_locked.xml.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
n=${1:?usage: mkdb.sh N [OUTDIR]}
out=${2:-.}
realm=${REALM:-bench.local}
[[ $n =~ ^[0-9]+$ ]] || { echo "N must be a number" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "sqlite3 not found (apt-get install -y sqlite3)" >&2; exit 1; }
mkdir -p "$out"
db="$out/kamailio.sqlite"
rm -f "$db" "$db-journal"

sql=$(mktemp)
trap 'rm -f "$sql"' EXIT
{
  printf 'PRAGMA journal_mode=OFF;\nPRAGMA synchronous=OFF;\n'
  cat "$here/schema.sql"
  echo "BEGIN;"
} >"$sql"

# HA1 = md5(user:realm:password), one streaming process for all users
# (one md5sum per user is far too slow for 10^5 users).
ha1_stream() {
  # reads "user:realm:pass" lines, writes md5 hex lines
  if command -v perl >/dev/null; then
    perl -MDigest::MD5=md5_hex -ne 'chomp; print md5_hex($_), "\n"'
  elif command -v python3 >/dev/null; then
    python3 -c 'import sys,hashlib
for l in sys.stdin: print(hashlib.md5(l.rstrip("\n").encode()).hexdigest())'
  else
    while IFS= read -r l; do printf '%s' "$l" | md5sum | cut -d' ' -f1; done
  fi
}

{ seq 1 "$n" | sed "s/.*/user&:$realm:pw-&/"; echo "locked1:$realm:pw-locked"; } \
  | ha1_stream >"$sql.ha1"
{ seq 1 "$n" | sed 's/.*/user& pw-&/'; echo "locked1 pw-locked"; } \
  | paste -d' ' - "$sql.ha1" \
  | awk -v realm="$realm" '{ locked = ($1 ~ /^locked/) ? 1 : 0;
      printf "INSERT INTO subscriber (username,domain,password,ha1,ha1b,locked) VALUES (\x27%s\x27,\x27%s\x27,\x27\x27,\x27%s\x27,\x27\x27,%d);\n", $1, realm, $3, locked }' \
  >>"$sql"
echo "COMMIT;" >>"$sql"
rm -f "$sql.ha1"
sqlite3 "$db" <"$sql" >/dev/null

{ echo SEQUENTIAL; seq 1 "$n" | sed "s/.*/user&;pw-&;$realm/"; } >"$out/users.sipp.csv"
seq 1 "$n" | sed "s/.*/user&@$realm,pw-&/" >"$out/users.csv"
printf 'SEQUENTIAL\nlocked1;pw-locked;%s\n' "$realm" >"$out/locked.sipp.csv"

echo "$db: $(sqlite3 "$db" 'select count(*) from subscriber') subscribers (realm $realm)" >&2
