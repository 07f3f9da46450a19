#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds (default 60) with the nightly
# compiler and cargo-fuzz, starting from the checked-in corpus
# (fuzz/corpus/TARGET), and prints the executions of each. New inputs go to
# a temporary directory (or to FUZZ_NEW_CORPUS/TARGET, kept), so the
# checked-in corpus only changes by hand: minimise what is worth keeping
# with `cargo +nightly fuzz cmin TARGET DIR` and copy it in. A crash stops
# the script and leaves its input under fuzz/artifacts/TARGET.
#
#   scripts/fuzz.sh 30
#   FUZZ_DEV=1 scripts/fuzz.sh 30   # unoptimized: builds faster, runs slower
#   FUZZ_NEW_CORPUS=/tmp/new scripts/fuzz.sh 30
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
# Release with debug assertions, or unoptimized (which has them anyway).
features=(--debug-assertions)
if [ -n "${FUZZ_DEV:-}" ]; then features=(--dev); fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz@0.13.2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
new_corpus=${FUZZ_NEW_CORPUS:-$scratch}
cargo +nightly fuzz build "${features[@]}"
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$new_corpus/$target" "corpus/$target"
    cargo +nightly fuzz run "${features[@]}" "$target" \
        "$new_corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        > "$scratch/$target.log" 2>&1 || {
        tail -n 40 "$scratch/$target.log"
        echo "fuzz: $target failed; its input is under fuzz/artifacts/$target" >&2
        exit 1
    }
    runs=$(grep -Eo 'Done [0-9]+ runs' "$scratch/$target.log" | grep -Eo '[0-9]+' || echo "?")
    printf 'fuzz: %-18s %10s executions in %ss\n' "$target" "$runs" "$seconds"
done
