#!/usr/bin/env bash
# The aarch64 CPU build without Docker: Debian's cross gcc + the aarch64 Rust std, then the binary
# runs under qemu-aarch64 on one bundled frame and must print the same grasps as the x86-64 build.
# CI runs this (scripts/test.sh). Emulation is ~500x slower than native: one image, not a benchmark.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/debs.sh
# Tool installs need the package mirrors; without them this check is skipped loudly, not failed.
if ! grasp_install_debs gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user file; then
  echo "aarch64 check SKIPPED: cannot install the cross toolchain packages (no Debian mirror?)" >&2; exit 0
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu && ! rustup target add aarch64-unknown-linux-gnu; then
  echo "aarch64 check SKIPPED: cannot install the aarch64 Rust std (rustup offline?)" >&2; exit 0
fi
target=aarch64-unknown-linux-gnu
# Keep this environment identical between runs, or cargo rebuilds everything.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu"
# The dev profile (dependencies optimised, see Cargo.toml), as the tests use: no release build
# for a check. Deployments build with --release (scripts/cross-build.sh).
echo "== cargo build --target $target -p grasp-edge (CPU: tract)" >&2
cargo build --locked --target "$target" -p grasp-edge
out="${CARGO_TARGET_DIR:-$root/target}"
arm_bin="$out/$target/debug/grasp-edge"
file "$arm_bin" 2>/dev/null | grep -q "ARM aarch64" || { echo "not an aarch64 binary: $arm_bin" >&2; exit 1; }
echo "== x86-64 reference" >&2
# GRASP_X86_EDGE: an x86-64 grasp-edge already built (scripts/test.sh passes its test build, which
# saves a third debug build of tract); otherwise build one.
x86_bin="${GRASP_X86_EDGE:-}"
if [ -z "$x86_bin" ] || [ ! -x "$x86_bin" ]; then
  cargo build --locked -p grasp-edge
  x86_bin="$out/debug/grasp-edge"
fi
img=edge/demo/frames/012.jpg
args=(detect --model models/ggcnn-p-rgb-224.onnx --backend tract --threads 1 --top-k 3 --json "$img")
"$x86_bin" "${args[@]}" > /tmp/grasp-x86.json
echo "== the aarch64 binary under qemu-aarch64 (about a minute)" >&2
time qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm_bin" "${args[@]}" > /tmp/grasp-arm.json
python3 - /tmp/grasp-x86.json /tmp/grasp-arm.json <<'PY'
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:])
ga, gb = a["grasps"], b["grasps"]
assert len(ga) == len(gb) and ga, f"grasp counts differ or empty: {len(ga)} vs {len(gb)}"
for x, y in zip(ga, gb):
    # Same peak pixel; float kernels differ (AVX vs NEON) only in the last bits.
    for k in ("x", "y", "angle", "width", "quality"):
        assert abs(x[k] - y[k]) <= 1e-3 * max(1.0, abs(x[k])), (k, x, y)
print(f"aarch64 == x86-64: {len(ga)} grasps, e.g. {ga[0]}")
PY
