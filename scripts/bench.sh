#!/usr/bin/env bash
# Benchmark: opsgate vs plain ssh (ControlMaster, one script per host in parallel) running the
# same ten steps on 1, 10 and 50 lab hosts; also opsgate's peak memory (GNU time's max RSS).
# Usage: ./scripts/bench.sh [ROUNDS]   (default 3 rounds; the median wall time is reported)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v bc >/dev/null 2>&1 || missing+=(bc)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] && apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "bench: needs ${missing[*]}: apt-get install -y ${missing[*]}" >&2; exit 1; }
fi

rounds=${1:-3}
cargo build --release --quiet
opsgate=$PWD/target/release/opsgate
# The same code without per-step audit appends (benchmark-only feature), for the overhead row.
cargo build --release --quiet --features bench-unrecorded --target-dir target/bench-unrecorded
unrecorded=$PWD/target/bench-unrecorded/release/opsgate
work=$(mktemp -d /tmp/ogbench.XXXXXX)
lab="$work/lab"
export OPSGATE_STATE_DIR="$work/state"
trap '"$opsgate" lab down --dir "$lab" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

inventory=$("$opsgate" lab up --hosts 50 --dir "$lab" | tail -n 1)
cp -r benches/ten-steps.yaml benches/files "$work/"

# The same ten steps as benches/ten-steps.yaml, sent one ssh command per step through a master.
baseline_host() {
  local name=$1 root=$2 sock="$work/cm-$1"
  local ssh=(ssh -F "$lab/ssh_config" -o ControlMaster=auto -o "ControlPath=$sock" -o ControlPersist=60 "$name")
  "${ssh[@]}" "mkdir -p $root/bench"
  "${ssh[@]}" "uname -a" >/dev/null
  printf '# benchmark config for %s\naddress = x\nroot = %s\n' "$name" "$root" | "${ssh[@]}" "cat > $root/bench/bench.conf.tmp && mv $root/bench/bench.conf.tmp $root/bench/bench.conf"
  "${ssh[@]}" "cat > $root/bench/payload.tmp && mv $root/bench/payload.tmp $root/bench/payload.bin" < "$work/files/payload.bin"
  "${ssh[@]}" "chmod 0600 $root/bench/payload.bin"
  "${ssh[@]}" "seq 1 1000" >/dev/null
  "${ssh[@]}" "du -sk $root/bench" >/dev/null
  "${ssh[@]}" "sha256sum $root/bench/payload.bin" >/dev/null
  "${ssh[@]}" "date -u +%FT%TZ" >/dev/null
  "${ssh[@]}" "touch $root/bench/done"
  "${ssh[@]}" -O exit 2>/dev/null || true
}

lab_root() { sed -n "/^  $1:/s/.*lab_root: \([^,}]*\).*/\1/p" "$inventory" | tr -d ' '; }

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-6s %12s %12s %8s %14s\n' hosts "opsgate(s)" "ssh(s)" ratio "opsgate RSS"
for count in 1 10 50; do
  limit=$(seq -s, -f 'lab%g' 1 "$count")
  og_times=() ssh_times=() rss=0
  for _ in $(seq "$rounds"); do
    for i in $(seq 1 "$count"); do rm -rf "$(lab_root "lab$i")/bench"; done
    start=$(now)
    /usr/bin/time -f %M -o "$work/rss" "$opsgate" -i "$inventory" run "$work/ten-steps.yaml" -l "$limit" >"$work/out" 2>&1 \
      || { cat "$work/out"; exit 1; }
    og_times+=("$(echo "$(now) - $start" | bc)")
    r=$(cat "$work/rss"); [ "$r" -gt "$rss" ] && rss=$r

    for i in $(seq 1 "$count"); do rm -rf "$(lab_root "lab$i")/bench"; done
    start=$(now)
    for i in $(seq 1 "$count"); do baseline_host "lab$i" "$(lab_root "lab$i")" & done
    wait
    ssh_times+=("$(echo "$(now) - $start" | bc)")
  done
  og=$(printf '%s\n' "${og_times[@]}" | median)
  base=$(printf '%s\n' "${ssh_times[@]}" | median)
  printf '%-6s %12.3f %12.3f %8.2f %11d KB\n' "$count" "$og" "$base" "$(echo "$og / $base" | bc -l)" "$rss"
done

echo
echo "audit recording overhead, 50 hosts × 10 steps (median of $rounds):"
limit=$(seq -s, -f 'lab%g' 1 50)
with=() without=()
for _ in $(seq "$rounds"); do
  for binary in "$opsgate" "$unrecorded"; do
    for i in $(seq 1 50); do rm -rf "$(lab_root "lab$i")/bench"; done
    start=$(now)
    "$binary" -i "$inventory" run "$work/ten-steps.yaml" -l "$limit" >"$work/out" 2>&1 \
      || { cat "$work/out"; exit 1; }
    elapsed=$(echo "$(now) - $start" | bc)
    if [ "$binary" = "$opsgate" ]; then with+=("$elapsed"); else without+=("$elapsed"); fi
  done
done
w=$(printf '%s\n' "${with[@]}" | median)
wo=$(printf '%s\n' "${without[@]}" | median)
printf 'recorded %.3fs, unrecorded %.3fs, overhead %.1f%%\n' "$w" "$wo" "$(echo "($w - $wo) * 100 / $wo" | bc -l)"

echo
echo "history latency at 100 000 recorded runs (release build):"
cargo test --release --quiet --features bench-history --lib bench_listing_100_000_runs -- --nocapture 2>/dev/null \
  | grep '^bench:'
