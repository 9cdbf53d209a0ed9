#!/bin/sh
# bench/run.sh: runs every benchmark in bench/ and prints their figures.
# Each run is bounded by BENCH_TIMEOUT seconds (default 300). Needs
# PETREL_BUILD, the absolute build dir (`make bench` sets it).
#
# Benchmarks are the executable files in bench/ (not this script). A
# benchmark may be run more than once with different arguments: list them in
# the `runs` function below. Exit status non-zero when any run failed or
# timed out.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${PETREL_BUILD:=$here/../build}"
export PETREL_BUILD
limit=${BENCH_TIMEOUT:-300}
status=0

# runs NAME: the argument lists to run bench/NAME with, one per line
# (an empty line = no arguments).
runs()
{
    case $1 in
    smtp)
        echo ""
        # The same load on an emulated slower disk (each fsync/fdatasync +2 ms,
        # like a SATA SSD): shows how many deliveries share one commit.
        echo "--fsync-delay-us 2000"
        ;;
    imap)
        echo ""
        # The same mix without the full FETCH 1:* of every envelope, which
        # dominates the first run: the per-command figures on their own.
        echo "-k 0"
        ;;
    idle)
        echo ""
        # LOGIN instead of SCRAM: one yescrypt hash per connection on the pool.
        echo "-n 200 --mech login"
        ;;
    relay)
        echo ""
        # B checking SPF, DKIM and DMARC of every message, as an MX does.
        echo "--checks enforce"
        ;;
    *) echo "" ;;
    esac
}

# smtp first, then pop3 (its maildrop is filled over SMTP), then the rest.
seen=" run.sh "
for b in "$here"/smtp "$here"/pop3 "$here"/*; do
    name=$(basename "$b")
    case $seen in *" $name "*) continue ;; esac
    seen="$seen$name "
    [ -f "$b" ] && [ -x "$b" ] || continue
    runs "$name" | while IFS= read -r args; do
        echo "== bench/$name${args:+ $args} (limit ${limit}s)"
        # $args is split into words on purpose.
        # shellcheck disable=SC2086
        timeout --kill-after=10 "$limit" "$b" $args
        rc=$?
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            echo "== bench/$name${args:+ $args}: TIMEOUT after ${limit}s"
        elif [ $rc -ne 0 ]; then
            echo "== bench/$name${args:+ $args}: FAILED (exit $rc)"
        else
            echo "== bench/$name${args:+ $args}: ok"
        fi
        [ $rc -eq 0 ] || exit 1
    done || status=1
done
exit $status
