#!/usr/bin/env bash
# Fuzz campaign: fuzz/campaign.sh SECONDS_PER_TARGET [TARGET...]
# Builds the targets on stable (`cargo fuzz build -s none`), seeds them from real inputs
# (seed.py), then runs each target alone at nice 19 (the machine is shared) for
# SECONDS_PER_TARGET on its corpus, which grows across runs (fuzz/corpus/<target>/).
# Prints one line per target (seconds, execs, exec/s, corpus size, coverage, findings) and
# appends it to fuzz/campaign/log.tsv. Findings land in fuzz/artifacts/<target>/; move each,
# once fixed, to fuzz/regressions/<target>/ so tests/fuzz_regressions.rs replays it.
# Exits 1 if any target found a crash, a hang (-timeout) or an out-of-memory input.
set -euo pipefail
secs=${1:?usage: fuzz/campaign.sh SECONDS_PER_TARGET [TARGET...]}
shift
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
(cd .. && cargo build -q --bin imgslim)
python3 seed.py ../target/debug/imgslim >/dev/null
nice -n 19 cargo fuzz build -s none
targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(cargo fuzz list)
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p campaign
[ -s campaign/log.tsv ] || printf 'date\ttarget\tseconds\texecs\texec_per_s\tcorpus\tcov\tft\tpeak_rss_mb\tfindings\n' > campaign/log.tsv
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a leak or a bomb is a finding too.
  rc=0
  nice -n 19 "$bin/$t" "corpus/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 > "campaign/$t.log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  stat() { grep -o "^stat::$1: *[0-9]*" "campaign/$t.log" | grep -o '[0-9]*$' || echo 0; }
  last=$(grep -E '^#[0-9]+' "campaign/$t.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo 0)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo 0)
  execs=$(stat number_of_executed_units)
  found=$(($(find "artifacts/$t" -type f | wc -l) - before))
  line=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$(date -u +%FT%TZ)" "$t" "$took" "$execs" \
    "$((execs / (took > 0 ? took : 1)))" "$(ls "corpus/$t" | wc -l)" "$cov" "$ft" "$(stat peak_rss_mb)" "$found")
  echo "$line" >> campaign/log.tsv
  echo "$line"
  if ((rc != 0 || found > 0)); then
    failed=1
    echo "FINDING in $t (exit $rc): $(grep -m1 -E 'ERROR|panicked|deadly signal|timeout' "campaign/$t.log" || true)" >&2
    ls "artifacts/$t" >&2
  fi
done
exit $failed
