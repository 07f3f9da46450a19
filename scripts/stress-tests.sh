#!/usr/bin/env bash
# Runs the daemon suite and the `all` suite N times under CPU load and
# prints how many rounds passed. Not part of CI: it takes long and loads
# the machine on purpose.
#
#   scripts/stress-tests.sh [N]        (default 20)
#   STRESS_SUITES=daemon scripts/stress-tests.sh 20   # one suite only
#
# The load is `stress-ng` (Debian's package, installed here if missing):
# one CPU hog per core, so the suites compete for every core. Each round
# runs as a background job of this non-interactive shell, which is how a
# CI runner or `nohup` starts them: SIGINT and SIGQUIT are then ignored by
# the test binaries, and a daemon stopped with SIGINT must still end at
# once. Logs of failed rounds are kept in target/stress/.
set -uo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-20}
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N]  (N rounds, a positive number; default 20)" >&2
    exit 2
fi

if ! command -v stress-ng >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends stress-ng
fi

# The test binaries of tests/tests to run: `daemon`, `all` or both.
suites=()
for suite in ${STRESS_SUITES:-daemon all}; do
    case "$suite" in
        daemon | all) suites+=(--test "$suite") ;;
        *)
            echo "STRESS_SUITES: unknown suite \`$suite\` (use daemon, all or both)" >&2
            exit 2
            ;;
    esac
done

# Built once, before the load starts.
cargo test -p wasmproc-tests "${suites[@]}" --no-run || exit 1

logs=target/stress
mkdir -p "$logs"
stress-ng --cpu "$(nproc)" --timeout 0 --quiet &
load=$!
trap 'kill "$load" 2>/dev/null; wait "$load" 2>/dev/null' EXIT

passed=0
for round in $(seq 1 "$rounds"); do
    log="$logs/round-$round.log"
    # A background job, then waited for: see above.
    began=$SECONDS
    cargo test -p wasmproc-tests "${suites[@]}" --no-fail-fast >"$log" 2>&1 &
    if wait $!; then
        passed=$((passed + 1))
        rm -f "$log"
        echo "round $round: passed in $((SECONDS - began))s"
    else
        echo "round $round: FAILED in $((SECONDS - began))s (log: $log)"
        grep -E '^test .* FAILED$|^    [a-z_]+$' "$log" | sort -u | head -20
    fi
done
echo "passed $passed of $rounds rounds under load (${STRESS_SUITES:-daemon all}; ${SECONDS}s)"
[ "$passed" -eq "$rounds" ]
