#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (docs/benchmarks.md, "On a GPU"):
#   1. the CUDA tests (every test that needs a CUDA device, plus the device and GPU-claim tests);
#   2. attack throughput at the paper's scale: full C3D on 16x3x112x112 clips
#      (params.yaml merged with config/paper.yaml), every registered method against the raw
#      batched forward, then four methods with one lane (the two lanes' effect).
# Runs with the machine's own python3 and torch; the packages it lacks travel as wheels in
# .whl/ (pydantic and its parts, opencv-contrib for the Heuristic-attack's saliency).
# Output goes to $OUT (or ./gpu_out) as cuda_tests.log and throughput.log.
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')" | tee -a "$OUT/gpu.txt"
timeout "${TEST_SECONDS:-150}" python3 -m pytest -q -p no:cacheprovider -o addopts="-ra --import-mode=importlib" \
  tests/attacks/test_conformance.py::test_every_attack_meets_the_contract_on_cuda \
  tests/blackbox/test_estimators.py tests/blackbox/test_rounds.py tests/blackbox/test_oracle.py tests/utils/test_devices.py tests/pipeline/test_gpu.py 2>&1 | tee "$OUT/cuda_tests.log"
timeout "${BENCH_SECONDS:-300}" python3 benchmarks/attack_throughput.py --config params.yaml --config config/paper.yaml \
  --victim c3d --budget "${BUDGET:-1000}" --blocks 3 --block-seconds 1.5 --in-flight 1 --in-flight 8 "$@" \
  2>&1 | tee "$OUT/throughput.log"
# SVA, dense, Opt- and Heuristic-attack with one lane (every video in flight in one round), for the
# effect of sva.blackbox.rounds' two lanes measured on the same warm machine (LANES_SECONDS=0 skips it)
[ "${LANES_SECONDS:-150}" = 0 ] && exit 0
timeout "${LANES_SECONDS:-150}" python3 benchmarks/attack_throughput.py --config params.yaml --config config/paper.yaml \
  --victim c3d --method sva --method dense --method opt --method heuristic --budget "${BUDGET:-1000}" --blocks 3 --block-seconds 2 \
  --in-flight 8 --lanes 1 "$@" 2>&1 | tee "$OUT/throughput_one_lane.log"
