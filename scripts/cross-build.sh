#!/usr/bin/env bash
# Builds grasp-edge for aarch64 with `cross` (needs Docker or Podman) using ./cross.toml.
#   scripts/cross-build.sh           CPU build: tract only, no libtorch
#   scripts/cross-build.sh --gpu     GPU build: tch against the Jetson's libtorch; set LIBTORCH to a
#                                    copy of the Jetson's torch (…/site-packages/torch), see README
# Output: target/aarch64-unknown-linux-gnu/release/grasp-edge
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CROSS_CONFIG="$PWD/cross.toml"   # cross reads Cross.toml otherwise
features=()
if [ "${1:-}" = "--gpu" ]; then
  : "${LIBTORCH:?set LIBTORCH to the Jetson's libtorch (a copy of its torch/ directory)}"
  features=(--features torch)
fi
command -v cross >/dev/null || { echo "cross is not installed: cargo install cross --locked" >&2; exit 1; }
exec cross build --release --locked --target aarch64-unknown-linux-gnu -p grasp-edge "${features[@]}"
