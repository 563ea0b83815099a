#!/usr/bin/env bash
# The project's one test command (README): installs what it needs (scripts/setup.sh), then runs
# every test of the workspace with the libtorch backend, and checks that the crates which do not
# need libtorch still build and pass without it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
source scripts/env.sh
export GRASP_REQUIRE_REFEREE=1  # the Python referees (onnx, onnxruntime) must run, not skip

echo "== cargo test (workspace, all features: tract + libtorch)" >&2
cargo test --workspace --all-features --locked

echo "== cargo test (crates without libtorch: tract only)" >&2
env -u LIBTORCH cargo test --locked -p grasp-models -p grasp-edge -p grasp-calib -p grasp-calib-cli
echo "== aarch64 CPU build, checked under qemu against x86-64 (scripts/aarch64-check.sh)" >&2
GRASP_X86_EDGE="${CARGO_TARGET_DIR:-$root/target}/debug/grasp-edge" ./scripts/aarch64-check.sh
echo "== all tests passed" >&2
