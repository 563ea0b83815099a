#!/usr/bin/env bash
# The CUDA check of the libtorch backend, for a machine with an NVIDIA GPU and PyTorch 2.11.
#
#   scripts/gpu-check.sh            build here (needs Rust), then run the checks here
#   scripts/gpu-check.sh build      only build: the binaries and data into target/gpu-check/
#   scripts/gpu-check.sh run [DIR]  only run, from DIR (default target/gpu-check): for a GPU machine
#                                   without Rust; copy DIR there and run this script from it
#
# The checks (each prints PASS or FAIL; the exit status is the number of failures):
#  1. the libtorch backend finds CUDA (libtorch_cuda.so from the Python's torch/lib);
#  2. the ONNX walker on CUDA against tract, on random GG-CNN and MTG-CNN models exported in both
#     up-sampling forms (every operator the exporter writes): `models/tests/backends.rs`;
#  3. `grasp-edge detect` with torch-cuda gives tract's grasps on every bundled demo frame
#     (same count; centre within 1 px, angle within 2°, width within 1 px, quality within 0.01);
#  4. milliseconds per frame at batch 1 (after warm-up; every inference copies its maps back to
#     the host, which synchronises the stream) and the whole pipeline's frames per second, from
#     the inference and pipeline benches.
# Environment: GRASP_TORCH_PYTHON, a Python whose `torch` is the CUDA build (default: python3), or
# GRASP_TORCH_LIB, its torch/lib directly. Without a GPU the checks run on the CPU and check 1 fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-all}"
dir="${2:-$root/target/gpu-check}"

build() {
    cd "$root"
    ./scripts/setup.sh
    source scripts/env.sh
    local target="${CARGO_TARGET_DIR:-$root/target}"
    mkdir -p "$dir/bin"
    cargo build --release --locked -p grasp-edge --features torch
    # The test and bench executables, found from cargo's JSON messages.
    local list="$dir/artifacts.jsonl"
    cargo test --release --locked -p grasp-models --features torch --test backends --no-run --message-format=json >"$list"
    cargo bench --locked -p grasp-models --features torch --bench inference --no-run --message-format=json >>"$list"
    cargo bench --locked -p grasp-edge --features torch --bench pipeline --no-run --message-format=json >>"$list"
    python3 - "$dir/bin" "$list" <<'EOF'
import json, shutil, sys
for line in open(sys.argv[2]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    exe = m.get("executable")
    if m.get("reason") == "compiler-artifact" and exe and m["target"]["kind"][0] in ("test", "bench"):
        shutil.copy(exe, f"{sys.argv[1]}/{m['target']['name']}")
EOF
    cp "$target/release/grasp-edge" "$dir/bin/"
    # Without debug info the four binaries are ~35 MB each instead of ~300 (release keeps line
    # tables for backtraces); they still link libtorch from the GPU machine's torch/lib.
    strip --strip-debug "$dir"/bin/*
    # What the binaries read at run time, at the same relative places as in the repository.
    mkdir -p "$dir/repo/edge" "$dir/repo/models" "$dir/repo/target" "$dir/repo/scripts"
    cp -r edge/demo "$dir/repo/edge/"
    cp models/*.onnx "$dir/repo/models/"
    cp scripts/bench_onnxruntime.py scripts/gpu-check.sh "$dir/repo/scripts/"
    echo "gpu-check: built into $dir (copy it to the GPU machine and run: $dir/repo/scripts/gpu-check.sh run $dir)"
}

run() {
    local py="${GRASP_TORCH_PYTHON:-python3}" fails=0
    local torch_lib
    torch_lib=${GRASP_TORCH_LIB:-$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')} || {
        echo "gpu-check: $py has no torch (set GRASP_TORCH_PYTHON, or GRASP_TORCH_LIB to a torch/lib)" >&2
        exit 1
    }
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    local bin="$dir/bin" repo="$dir/repo"
    [[ -d $repo ]] || repo="$root"
    check() { if "$@"; then echo "PASS: $name"; else echo "FAIL: $name"; fails=$((fails + 1)); fi; }

    detect_json() { "$bin/grasp-edge" detect --model "$repo/models/ggcnn-p-rgb-224.onnx" --backend "$1" --top-k 5 --json "$repo"/edge/demo/frames/*.jpg; }
    name="libtorch finds CUDA"
    check bash -c "'$bin/grasp-edge' detect --model '$repo/models/ggcnn-p-rgb-224.onnx' --backend torch --json '$repo/edge/demo/frames/001.jpg' | grep -q '\"backend\":\"torch-cuda\"'"

    name="ONNX walker on CUDA = tract, every exported operator (models/tests/backends.rs)"
    check "$bin/backends" --test-threads 1

    name="grasp-edge detect: torch-cuda grasps = tract grasps on the demo frames"
    detect_json torch >"$dir/torch.jsonl"
    detect_json tract >"$dir/tract.jsonl"
    check "$py" - "$dir/torch.jsonl" "$dir/tract.jsonl" <<'EOF'
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
bad = []
for x, y in zip(a, b):
    if len(x["grasps"]) != len(y["grasps"]):
        bad.append(f"{x['image']}: {len(x['grasps'])} vs {len(y['grasps'])} grasps")
        continue
    for g, h in zip(x["grasps"], y["grasps"]):
        da = abs(g["angle"] - h["angle"]) % math.pi
        if max(abs(g["x"] - h["x"]), abs(g["y"] - h["y"]), abs(g["width"] - h["width"])) > 1.0 \
                or min(da, math.pi - da) > math.radians(2) or abs(g["quality"] - h["quality"]) > 0.01:
            bad.append(f"{x['image']}: {g} vs {h}")
print("\n".join(bad) or f"{len(a)} frames agree")
sys.exit(len(a) != len(b) or bool(bad))
EOF

    export GRASP_REPO="$repo"
    name="milliseconds per frame at batch 1 (inference bench)"
    check "$bin/inference"
    name="pipeline frames per second (pipeline bench)"
    check env FRAMES=200 "$bin/pipeline"
    [[ -f $repo/target/bench-inference.md ]] && cat "$repo/target/bench-inference.md"
    [[ -f $repo/target/bench-pipeline.md ]] && cat "$repo/target/bench-pipeline.md"
    echo "gpu-check: $fails failed"
    exit "$fails"
}

case "$mode" in
    build) build ;;
    run) run ;;
    all) build && run ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
