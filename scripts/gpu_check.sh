#!/usr/bin/env bash
# Validates a GPU host in one run (orstream bench gpu): imports, the torch backend's parity
# against the packages' golden outputs, 1080p latency of the recognizer and the segmenter with
# GPU pre-processing with and without CUDA graphs, and how many concurrent 1080p30 streams the
# GPU sustains with p99 frame-to-result under 50 ms. Prints a table; every figure goes to
# $OUT_DIR/gpu_check.json (default runs/gpu_check).
#
# Needs only a Python with PyTorch (CUDA), ONNX, ONNX Runtime, OpenCV, gRPC, numba, pydantic and
# PyYAML: no apt, no internet, no GStreamer, no Lightning. orstream is installed from this
# source tree into a temporary folder (pip --no-deps --no-build-isolation), leaving the host's
# environment untouched. Wheels of missing pure-Python packages may be put in $WHEELS (default
# .whl beside this project); they are installed into the same temporary folder.
#
# With GPU_TESTS=1 it then runs the test suite's `gpu` tests against the same install (pytest
# and Lightning needed for those; the GPU check itself imports neither), output to
# $OUT_DIR/gpu_tests.log; the exit status is the check's, else the tests'.
#
# Usage: [GPU_TESTS=1] scripts/gpu_check.sh [extra options of `orstream bench gpu`, e.g.
#        --device cuda:1]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
out_dir=${OUT_DIR:-runs/gpu_check}
wheels=${WHEELS:-.whl}
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT

mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
if compgen -G "$wheels/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl
fi
"$python" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
  --target "$site" .
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Run from the install, not from this tree: `python -m` puts the working directory first on
# the module path, and this tree's top-level orstream/ folder is only part of the package.
cd "$site"
# Every minute counts on a borrowed GPU: the whole check stops at 8 minutes, and the stream
# search plans to end by 7 (--time-budget) so that the report is printed.
status=0
timeout 480 "$python" -m orstream.cli bench gpu \
  --model "$root/edge/packages/pitvis_workflow" --segmenter "$root/edge/packages/imis_segmenter" \
  --time-budget 420 --json "$out_dir/gpu_check.json" "$@" 2>&1 | tee "$out_dir/gpu_check.log" \
  || status=$?
if [[ "${GPU_TESTS:-0}" == 1 ]]; then
  # Only the files holding gpu tests are collected (others import GStreamer). -P: the tests
  # import orstream from the install too. The script's own test is left out: the check has
  # just run.
  tests=0
  mapfile -t files < <(cd "$root" && grep -rl --include="test_*.py" "pytest.mark.gpu" tests)
  (cd "$root" && GPU_TESTS=0 timeout 240 "$python" -P -m pytest -m gpu -q -p no:cacheprovider \
    --deselect tests/edge/bench/test_bench_gpu.py::test_gpu_check_script_passes_on_this_gpu "${files[@]}") \
    2>&1 | tee "$out_dir/gpu_tests.log" || tests=$?
  if [[ $status == 0 ]]; then status=$tests; fi
fi
exit "$status"
