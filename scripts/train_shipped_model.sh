#!/usr/bin/env bash
# Rebuilds edge/packages/pitvis_workflow from nothing: the phantom data it was trained and
# validated on, the training run, and the ONNX export. About 25 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
orstream=.venv/bin/orstream
data=${DATA:-data}

$orstream phantom make --out "$data/phantom_train20" --cases 20 --seconds 240 --seed 11 \
  --width 640 --height 360 --jobs 2
$orstream phantom make --out "$data/phantom_heldout" --cases 3 --seconds 240 --seed 12 \
  --first-video 21 --width 640 --height 360 --jobs 2
$orstream train workflow --config training/configs/workflow_phantom.yaml \
  data.root="$data/phantom_train20" data.val_root="$data/phantom_heldout" \
  trainer.logger.init_args.save_dir=runs/shipped
best=$(ls -t runs/shipped/workflow/version_*/checkpoints/best-*.ckpt | head -n 1)
$orstream export onnx --checkpoint "$best" --out edge/packages/pitvis_workflow --overwrite
