#!/usr/bin/env bash
# The project's one test command (README): installs what it needs (scripts/setup.sh), then
#  1. the format gate (rustfmt, rustfmt.toml);
#  2. one build of every target of the workspace (libraries, binaries, tests, benches, examples)
#     with clippy as the compiler of the workspace's own crates: `-D warnings` covers clippy's
#     lints and `missing_docs`, and the same build is what the tests run (no second build);
#  3. every test, with the libtorch backend and the hardware-in-the-loop tier 1;
#  4. the aarch64 CPU build (tract only, no libtorch: it also proves the crates build without
#     libtorch), run under qemu against the x86-64 grasps.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
source scripts/env.sh
export GRASP_REQUIRE_REFEREE=1  # the Python referees (onnx, onnxruntime) must run, not skip
phase() { echo "== $1 ($(date +%T), ${SECONDS}s in)" >&2; }

phase "cargo fmt --check"
cargo fmt --all --check

# `cargo clippy --workspace --all-targets -- -D warnings`, but as the real build: clippy-driver
# compiles the workspace's crates (dependencies are compiled by rustc as usual), so the lints
# cost no second build of the workspace. Keep these two variables the same for both cargo calls,
# or cargo rebuilds the workspace.
export RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
phase "build all targets, clippy -D warnings (lints + missing_docs)"
cargo test --workspace --all-features --all-targets --locked --no-run

phase "cargo test (workspace, tract + libtorch)"
cargo test --workspace --all-features --locked
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

phase "aarch64 CPU build, checked under qemu against x86-64 (scripts/aarch64-check.sh)"
GRASP_X86_EDGE="${CARGO_TARGET_DIR:-$root/target}/debug/grasp-edge" ./scripts/aarch64-check.sh
phase "all tests passed"
