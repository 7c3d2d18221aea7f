#!/usr/bin/env bash
# Run every benchmark script in benchmarks/ with the project's venv python.
#
#   bash benchmarks/run_all.sh            # full size
#   bash benchmarks/run_all.sh --quick    # smoke test: small values, few repeats
#
# --quick is passed to the scripts that know it; the others get sizes of their own
# (store_bench.py: --mb 32 --repeat 2). PYTHON=... overrides the interpreter.
# azure_bench.py and docker_bench.py print a skip row without their service
# (bash scripts/services.sh up azurite / docker).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-$root/.venv/bin/python}"
quick=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
    esac
done

cd "$root"  # the git probe of each run and the default store paths are relative to here
status=0
for script in "$here"/*_bench.py; do
    name="$(basename "$script")"
    args=()
    if [[ $quick == 1 ]]; then
        if grep -q -- '"--quick"' "$script"; then
            args=(--quick)
        elif [[ $name == store_bench.py ]]; then
            args=(--mb 32 --repeat 2)
        fi
    fi
    echo "=== $name ${args[*]:-} ==="
    if ! "$python" "$script" "${args[@]}"; then
        echo "!!! $name failed" >&2
        status=1
    fi
    echo
done
exit $status
