#!/usr/bin/env bash
# Rebuilds edge/packages/instrument_classifier from nothing: tip crops of what the shipped
# segmenter finds in 84 training and 6 held-out phantom cases (never the demo's seed 424242 nor
# the tests' cases; the card records them and `orstream demo` refuses them), the training run and
# the ONNX export. About 30 minutes on 2 CPU cores (crops 15, training 12).
# Run it again after the segmenter changes: the classifier learns on the segmenter's own masks.
set -euo pipefail
cd "$(dirname "$0")/.."
orstream=.venv/bin/orstream
mkdir -p runs/crops

$orstream export crops --seeds 201-236,243-290 --truth-copies 2 --out runs/crops/train.npz
$orstream export crops --seeds 237-242 --out runs/crops/val.npz
$orstream train classifier --config training/configs/instrument_classifier.yaml \
  trainer.logger.init_args.save_dir=runs/shipped
last=$(ls -td runs/shipped/classifier/version_* | head -n 1)/checkpoints/last.ckpt
$orstream export onnx --checkpoint "$last" --out edge/packages/instrument_classifier --overwrite
