#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, as one script: the CUDA tests, the engine's
# whole test suite on that machine, the examples on --device cuda, and the CUDA
# benchmark (workload 9) against PyTorch CUDA. Needs CuPy and, for the benchmark,
# torch with CUDA. Results go to $OUT (or /tmp/adcli-gpu).
set -uo pipefail
out=${OUT:-/tmp/adcli-gpu}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$py" -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)"
} 2>&1 | tee "$out/gpu.txt"
"$py" -m pytest -q -p no:cacheprovider -m cuda tests/ 2>&1 | tee "$out/cuda-tests.txt" || status=1
"$py" -m pytest -q -p no:cacheprovider tests/test_engine_*.py tests/test_taylor.py 2>&1 \
  | tail -3 | tee "$out/engine-tests.txt" || status=1
"$py" -m adcli --device cuda run scripts/examples/*.ad --quiet 2>&1 | tee "$out/examples-cuda.txt" \
  || status=1
"$py" -m adcli --device cuda eval "sqrt(sum(x^2))" --at "x=[3, 4]" --wrt x 2>&1 | tee -a "$out/examples-cuda.txt"
"$py" scripts/bench/run.py --cuda --only cuda --json-out "$out/bench-cuda.json" 2>&1 \
  | tee "$out/bench-cuda.txt" || status=1
exit $status
