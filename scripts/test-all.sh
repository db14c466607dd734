#!/usr/bin/env bash
# Runs every test of swimraft: Rust (fmt, clippy, rustdoc, unit, simulation, loopback clusters), the
# Python package (built and installed with `pip install .`), the C ABI program and the
# multi-process cluster tests. Installs what it needs; safe to run on a fresh clone.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export CARGO_TERM_COLOR=never
PYTHON="${PYTHON:-python3}"

step() { printf '\n=== %s ===\n' "$*"; }

step "python tooling"
"$PYTHON" -m pip install --quiet --disable-pip-version-check \
    "maturin==1.16.0" "pytest==9.2.0" "pytest-asyncio==1.3.0"

step "rustfmt, clippy and rustdoc"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Broken intra-doc links fail here, not on a reader's `cargo doc` (private items included:
# the module docs explain the internals to the next developer).
RUSTDOCFLAGS="-D warnings -A rustdoc::private_intra_doc_links" \
    cargo doc --workspace --no-deps --document-private-items --locked --quiet

step "rust tests (unit, storage, simulation, loopback clusters)"
cargo test --workspace --locked

step "C ABI: header freshness and the C test program"
bash tests/c/run.sh

step "python package (pip install .)"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .
"$PYTHON" scripts/check_stubs.py
if [ -f "$repo/../shared/checks/api_surface.py" ]; then
    (cd /tmp && RINGRIFT_DATA_DIR="$(mktemp -d)" "$PYTHON" "$repo/../shared/checks/api_surface.py" all)
fi

step "python and multi-process cluster tests"
"$PYTHON" -m pytest -q tests/python tests/cluster

echo
echo "all test suites passed"
