#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, docs, and every test —
# including the ones that start real sshd servers on 127.0.0.x.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
cargo test --quiet --no-fail-fast -- --test-threads 4
