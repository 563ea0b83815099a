#!/usr/bin/env bash
# Table I at paper scale on a Slurm cluster: one job-array task per cell of `grasp-train cv`
# (row × fold, one GPU each), then a job that merges the finished cells into the table once the
# array is over. A failed cell leaves the others' results intact; `--collect` names what is
# missing, and rerunning this script (or `grasp-train cv --cell N ...`) redoes only unfinished
# cells (finished ones are skipped, interrupted ones resume from their checkpoint).
#
# Usage:  scripts/slurm-cv.sh OUT [grasp-train cv options...]
# e.g.:   scripts/slurm-cv.sh runs/table1 --dataset jacquard:/data/Jacquard --epochs 40 \
#             --input-size 300 --folds 5 --batch-size 8
# Environment: GRASP_TRAIN (the binary, default target/release/grasp-train built with
# `cargo build --release -p grasp-train`), SLURM_GPUS (default 1 per task), SLURM_CPUS (default 8),
# SLURM_EXTRA (more sbatch options, e.g. "--partition=gpu --time=12:00:00").
set -euo pipefail
if [[ $# -lt 1 || $1 == -* ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
out=$1
shift
folds=5
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [[ ${args[i]} == --folds ]] && folds=${args[i + 1]:-5}
    [[ ${args[i]} == --folds=* ]] && folds=${args[i]#--folds=}
done
[[ $folds =~ ^[1-5]$ ]] || { echo "slurm-cv: --folds must be 1..5, got '$folds'" >&2; exit 2; }
cells=$((6 * folds))
bin=${GRASP_TRAIN:-target/release/grasp-train}
[[ -x $bin ]] || { echo "slurm-cv: $bin is not an executable (cargo build --release -p grasp-train, or set GRASP_TRAIN)" >&2; exit 2; }
mkdir -p "$out"
# The cell's command line, quoted once here so that paths with spaces survive sbatch --wrap.
cell_cmd=$(printf '%q ' "$bin" cv --out "$out" "$@")
read -r -a extra <<<"${SLURM_EXTRA:-}"
array_id=$(sbatch --parsable --job-name=grasp-cv --array="0-$((cells - 1))" \
    --gres="gpu:${SLURM_GPUS:-1}" --cpus-per-task="${SLURM_CPUS:-8}" --output="$out/slurm-%A_%a.log" \
    "${extra[@]}" --wrap="$cell_cmd --cell \$SLURM_ARRAY_TASK_ID")
collect_cmd=$(printf '%q ' "$bin" cv --collect --folds "$folds" --out "$out")
collect_id=$(sbatch --parsable --job-name=grasp-cv-collect --dependency="afterany:$array_id" \
    --output="$out/slurm-collect.log" "${extra[@]}" --wrap="$collect_cmd")
echo "submitted $cells cells as array job $array_id and the table as job $collect_id; results in $out/table.md"
echo "progress: $(printf '%q ' "$bin") cv --plan --folds $folds --out $(printf '%q' "$out")"
