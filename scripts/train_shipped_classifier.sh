#!/usr/bin/env bash
# Rebuilds edge/packages/instrument_classifier from nothing: tip crops of what the shipped
# segmenter finds in phantom cases rendered on the fly (seeds in
# training/configs/instrument_classifier.yaml; never the demo's 424242 nor the tests' cases),
# the training run and the ONNX export. About 25 minutes on 2 CPU cores (crops 15, training 10).
# Run it again after the segmenter changes: the classifier learns on the segmenter's own masks.
set -euo pipefail
cd "$(dirname "$0")/.."
orstream=.venv/bin/orstream

$orstream train classifier --config training/configs/instrument_classifier.yaml \
  trainer.logger.init_args.save_dir=runs/shipped
last=$(ls -td runs/shipped/classifier/version_* | head -n 1)/checkpoints/last.ckpt
$orstream export onnx --checkpoint "$last" --out edge/packages/instrument_classifier --overwrite
