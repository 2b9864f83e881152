#!/usr/bin/env bash
# The GPU checks of models/, as one run on a machine with CUDA (about 6-8 minutes on an H100/H200):
#   1. the neuron tests on CUDA: the fused Triton kernels compiled for the device against the
#      PyTorch path and the reference loop (spikes identical, gradient cosine >= 0.9999), CUDA
#      unpack_batch, torch.compile of the fused operator, ResNet steps with recomputation (cuDNN BN);
#   2. benchmarks/bench_models.py (a) and (b): neurons and ResNet-18 steps vs SpikingJelly.
# Needs torch with CUDA, triton, pytest, numpy, and SpikingJelly for its rows: pass a directory of
# wheels as $1 (e.g. .whl from `pip download --no-deps spikingjelly==2.0.0 -d .whl`; installed
# into /tmp/odg-site). $PYTHON: the interpreter (default python3). Output: $OUT (or ./gpu-checks)/*.txt.
# When the tests of step 1 pass, record.txt names the entry to add to FUSED_CHECKED in
# models/_backend.py: only then does backend="auto" use the fused kernels on that kind of GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-checks}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "${1:-}" ]; then
    # into a folder of its own: the machine's site-packages may be read-only and has no index
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/odg-site \
        "$1"/*.whl 2>&1 | tail -2
    export PYTHONPATH="$PYTHONPATH:/tmp/odg-site"
fi
"$py" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" \
    | tee "$out/device.txt"
timeout 240 "$py" -m pytest -q -p no:cacheprovider tests/models/test_triton_lif.py tests/models/test_neurons.py \
    tests/models/test_recompute.py -k "not sharpened" \
    2>&1 | tail -25 | tee "$out/tests.txt"
if [ "${PIPESTATUS[0]}" -eq 0 ]; then
    "$py" -c "import torch; c = torch.cuda.get_device_capability(); n = torch.cuda.get_device_name(); \
print(f'CUDA tests passed on {n}: add {c} to FUSED_CHECKED in models/_backend.py (comment: {n})')" \
        | tee "$out/record.txt"
else
    echo "CUDA tests failed: FUSED_CHECKED stays as it is" | tee "$out/record.txt"
fi
timeout 420 "$py" benchmarks/bench_models.py --skip c 2>&1 | tee "$out/bench_models.txt"
