# Source me: exports what tch's build and the libtorch-linked binaries need (after scripts/setup.sh).
_grasp_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LIBTORCH="${GRASP_LIBTORCH:-$_grasp_root/.libtorch}"
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$_grasp_root/.venv/bin:$PATH"
unset _grasp_root
