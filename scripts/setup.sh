#!/usr/bin/env bash
# One idempotent setup step for building and testing grasp-edge on a Debian/x86-64 machine:
#  0. Debian packages: libclang (bindgen generates the V4L2 bindings of the `v4l` crate), and
#     rustup's rustfmt and clippy (the gates of scripts/test.sh);
#  1. a minimal libtorch (for `tch`) assembled from PyPI's torch==2.11.0 wheel in $GRASP_LIBTORCH
#     (default: .libtorch/ in the checkout, git-ignored);
#  2. a project-local Python venv (.venv/) with the outside referees used by the tests
#     (onnx, onnxruntime, numpy, pydobot).
# Wheels are cached in ${XDG_CACHE_HOME:-~/.cache}/grasp-edge/wheels so warm runs download nothing.
# Afterwards `source scripts/env.sh` exports LIBTORCH and LD_LIBRARY_PATH for cargo and the binaries.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/versions.sh"
libtorch="${GRASP_LIBTORCH:-$root/.libtorch}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/grasp-edge/wheels"
mkdir -p "$cache"

source "$root/scripts/debs.sh"
grasp_install_debs

# The format and lint gates of scripts/test.sh.
if ! command -v cargo-fmt >/dev/null || ! command -v clippy-driver >/dev/null; then
  rustup component add rustfmt clippy
fi

fetch() { # pip download one pinned wheel (no dependencies) into the cache unless it is there
  local spec="$1" pattern="$2"
  if ! ls "$cache"/$pattern >/dev/null 2>&1; then
    echo "setup: downloading $spec" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$cache" "$spec"
  fi
  ls "$cache"/$pattern | head -n1
}

stamp="$libtorch/.grasp-edge-torch-$TORCH_VERSION"
if [ ! -f "$stamp" ]; then
  torch_whl=$(fetch "torch==$TORCH_VERSION" "torch-$TORCH_VERSION-cp3*-manylinux*_x86_64.whl")
  cudart_whl=$(fetch "nvidia-cuda-runtime==$CUDART_VERSION" "nvidia_cuda_runtime-$CUDART_VERSION-*.whl")
  cupti_whl=$(fetch "nvidia-cuda-cupti==$CUPTI_VERSION" "nvidia_cuda_cupti-$CUPTI_VERSION-*.whl")
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  echo "setup: assembling libtorch $TORCH_VERSION in $libtorch" >&2
  python3 - "$torch_whl" "$cudart_whl" "$cupti_whl" "$tmp" <<'PY'
import sys, zipfile, os
torch_whl, cudart_whl, cupti_whl, out = sys.argv[1:]
# libtorch_cuda.so is left out on purpose: torch-sys links it only when present, and the edge
# binary loads it at run time where a GPU build of PyTorch is installed (see README).
libs = {"libtorch_cpu.so", "libc10.so", "libtorch.so", "libgomp.so.1"}
with zipfile.ZipFile(torch_whl) as z:
    for n in z.namelist():
        if n.startswith("torch/include/") or (n.startswith("torch/lib/") and os.path.basename(n) in libs):
            z.extract(n, out)
for whl, lib in ((cudart_whl, "libcudart.so.13"), (cupti_whl, "libcupti.so.13")):
    with zipfile.ZipFile(whl) as z:
        (name,) = [n for n in z.namelist() if n.endswith("/" + lib)]
        with z.open(name) as src, open(os.path.join(out, "torch/lib", lib), "wb") as dst:
            dst.write(src.read())
PY
  rm -rf "$libtorch"; mkdir -p "$libtorch"
  mv "$tmp/torch/include" "$tmp/torch/lib" "$libtorch/"
  touch "$stamp"
fi

venv="$root/.venv"
pystamp="$venv/.grasp-edge-$(sha256sum "$root/scripts/requirements-test.txt" | cut -c1-16)"
if [ ! -f "$pystamp" ]; then
  echo "setup: creating $venv with the test referees" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet -r "$root/scripts/requirements-test.txt"
  touch "$pystamp"
fi
echo "setup: ok (libtorch $TORCH_VERSION in $libtorch, python referees in $venv)" >&2
