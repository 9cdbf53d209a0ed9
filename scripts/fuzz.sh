#!/bin/sh
# Builds every fuzz target with clang, libFuzzer, ASan and UBSan, and runs
# each for FUZZ_SECONDS (default 60); FUZZ_ONLY=NAME runs one.
# The kept corpus is tests/fuzz/corpus/NAME (read only here); what the run
# discovers goes to build-fuzz/corpus/NAME. An input that crashes is written
# to tests/fuzz/corpus/NAME/crash-* so it becomes a regression test that
# `make test` replays.
set -e
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPETREL_SANITIZE=ON -DPETREL_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)"
status=0
for bin in build-fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    [ -n "${FUZZ_ONLY:-}" ] && [ "$FUZZ_ONLY" != "$name" ] && continue
    mkdir -p "tests/fuzz/corpus/$name" "build-fuzz/corpus/$name"
    echo "== fuzz $name for ${SECONDS_EACH}s"
    if ! "$bin" -max_total_time="$SECONDS_EACH" -max_len=65536 \
            -artifact_prefix="tests/fuzz/corpus/$name/crash-" \
            "build-fuzz/corpus/$name" "tests/fuzz/corpus/$name" >"build-fuzz/$name.log" 2>&1; then
        echo "fuzz $name FAILED: see build-fuzz/$name.log"; status=1
    fi
    tail -n 2 "build-fuzz/$name.log"
done
exit $status
