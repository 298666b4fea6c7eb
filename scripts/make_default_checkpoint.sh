#!/usr/bin/env bash
# Make equicat's first shipped checkpoint: OC-EMT data (80 slab+adsorbate systems labelled by
# ASE's EMT) and a small conservative EquiformerV2 trained on it (scripts/oc_emt_default.yaml).
#
#   scripts/make_default_checkpoint.sh           # the real run, ~15 min on 2 CPU cores
#   scripts/make_default_checkpoint.sh --smoke   # same data, 80 steps (~1 min), separate dir
#
# Both steps resume when rerun: datagen reuses finished chunks, train continues from
# train_state.pt. The checkpoint is RUN/train/best.pt (EMA weights, element references folded
# into the model config, so it predicts EMT total energies directly).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=runs/oc_emt_default/data
OUT=runs/oc_emt_default/train
EXTRA=()
if [[ "${1:-}" == "--smoke" ]]; then
    OUT=runs/oc_emt_smoke/train
    EXTRA=(--max-steps 80 --log-every 10)
fi

equicat datagen oc-emt --out "$DATA" --systems 80 --seed 0 --placement simple
python scripts/time_train_step.py scripts/oc_emt_default.yaml --steps 4
equicat train scripts/oc_emt_default.yaml --out "$OUT" "${EXTRA[@]}"
echo "checkpoint: $OUT/best.pt (log: $OUT/log.csv)"
