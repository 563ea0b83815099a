#!/usr/bin/env bash
# Issue 14's model targets for one centre-crop model, in one table: the Cornell test scenes at
# ×1.0 (also argmax), ×0.7 and ×1.4 about the centre, the Jacquard samples' held-out object and
# all 8, and the bundled demo frames against their own ground truth.
#   scripts/model-targets.sh MODEL.onnx
# Needs ../shared/data (skips with a message without it) and a release grasp-train
# (`cargo build --release -p grasp-train`; built here if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="$(realpath "${1:?usage: scripts/model-targets.sh MODEL.onnx}")"
cd "$root"
source scripts/env.sh
data="$root/../shared/data"
if [ ! -d "$data/cornell-crops" ] || [ ! -d "$data/jacquard-samples" ]; then
  echo "model-targets SKIPPED: $data (Cornell crops, Jacquard samples) is not here" >&2; exit 0
fi
out="${CARGO_TARGET_DIR:-$root/target}"
gt="$out/release/grasp-train"
[ -x "$gt" ] || cargo build --locked --release -q -p grasp-train
C="cornell:$data/cornell-crops"; J="jacquard:$data/jacquard-samples"
last() { "$@" 2>&1 | tail -1; }
echo "| test | $(basename "$model") | issue 14 target |"
echo "|---|---|---|"
echo "| Cornell test ×1.0 | $(last "$gt" eval --model "$model" --dataset "$C" --split test) | ≥ 90 % |"
echo "| same, argmax | $(last "$gt" eval --model "$model" --dataset "$C" --split test --argmax) | |"
for f in 0.7 1.4; do
  echo "| Cornell test ×$f | $(last "$gt" eval --model "$model" --dataset "$C" --split test --rescale $f) | ≥ 85 % |"
done
echo "| Jacquard held-out object (fold 0 validation) | $(last "$gt" eval --model "$model" --dataset "$J" --split val) | ≥ 80 % |"
echo "| Jacquard, all 8 | $(last "$gt" eval --model "$model" --dataset "$J") | |"
demo=$(GRASP_DEMO_MODEL="$model" cargo test --locked -q -p grasp-train --test demo_frames \
  the_default_model_finds -- --nocapture 2>&1 | grep -o "demo frames: [0-9]* of 16" || echo "demo frames: not scored")
echo "| bundled demo frames | ${demo#demo frames: } | 16 of 16 |"
