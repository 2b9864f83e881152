#!/usr/bin/env bash
# The GPU checks of models/, as one run on a machine with CUDA (about 6-8 minutes on an H100/H200):
#   1. the neuron tests on CUDA: the fused Triton kernels compiled for the device against the
#      PyTorch path and the reference loop (spikes identical, gradient cosine >= 0.9999), CUDA
#      unpack_batch, torch.compile of the fused operator;
#   2. benchmarks/bench_models.py (a) and (b): neurons and ResNet-18 steps vs SpikingJelly.
# Needs torch with CUDA, triton, pytest, numpy (and SpikingJelly for its rows: pass a directory of
# wheels as $1 to install it with --no-deps first). Output: $OUT (or ./gpu-checks)/*.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-checks}"
mkdir -p "$out"
if [ -n "${1:-}" ]; then
    python -m pip install -q --no-deps "$1"/*.whl 2>&1 | tail -2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" \
    | tee "$out/device.txt"
timeout 240 python -m pytest -q -p no:cacheprovider tests/models/test_triton_lif.py tests/models/test_neurons.py \
    2>&1 | tail -25 | tee "$out/tests.txt"
timeout 420 python benchmarks/bench_models.py --skip c 2>&1 | tee "$out/bench_models.txt"
