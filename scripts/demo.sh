#!/usr/bin/env bash
# The README's demo command: the edge runtime on embedded defaults (shipped model, bundled frames,
# bundled calibration, simulated arm on a pseudo-terminal). Arguments go to `grasp-edge demo`
# (e.g. --frames 32, --mode stream, --out DIR). Needs no libtorch, camera or robot.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/debs.sh
grasp_install_debs
exec cargo run --release --locked -p grasp-edge -- demo "$@"
