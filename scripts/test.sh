#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit, property and black-box tests against real
# PostgreSQL and Redis. Installs and starts them when absent; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

prepare_stack

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked
