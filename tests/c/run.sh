#!/usr/bin/env bash
# Builds libswimraft, compiles tests/c/test_swimraft.c against the static library with
# -Wall -Wextra -Werror (plain, then with AddressSanitizer + UBSan), runs both, and checks that
# the build left include/swimraft.h as committed.
#
#   tests/c/run.sh                  # from anywhere; respects CARGO_TARGET_DIR and CC
#   SWIMRAFT_C_SANITIZE=0 tests/c/run.sh   # skip the sanitizer build
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

# cargo resolves a relative CARGO_TARGET_DIR against its working directory, which is $repo.
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac

cargo build -p swimraft-c

cc=${CC:-cc}
out=$target/c-test
mkdir -p "$out"
cflags=(-Wall -Wextra -Werror -std=c11 -g -I"$repo/include")
libs=("$target/debug/libswimraft.a" -lpthread -ldl -lm)

echo "== C test (plain)"
"$cc" "${cflags[@]}" "$here/test_swimraft.c" "${libs[@]}" -o "$out/test_swimraft"
"$out/test_swimraft"

if [ "${SWIMRAFT_C_SANITIZE:-1}" != 0 ]; then
    echo "== C test (-fsanitize=address,undefined)"
    "$cc" "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
        -fno-sanitize-recover=undefined "$here/test_swimraft.c" "${libs[@]}" \
        -o "$out/test_swimraft_asan"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$out/test_swimraft_asan"
fi

echo "== include/swimraft.h is up to date"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    if ! git -C "$repo" ls-files --error-unmatch -- include/swimraft.h >/dev/null 2>&1; then
        echo "note: include/swimraft.h is not committed yet; nothing to compare with"
    fi
    git -C "$repo" diff --exit-code -- include/swimraft.h
    echo "ok"
else
    echo "note: $repo is not a git checkout; header check skipped"
fi
