set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 120 python3 -m pytest -q -p no:cacheprovider -o addopts="-ra --import-mode=importlib" \
  tests/attacks/test_conformance.py::test_every_attack_meets_the_contract_on_cuda \
  tests/blackbox/test_estimators.py tests/blackbox/test_rounds.py tests/blackbox/test_oracle.py tests/utils/test_devices.py tests/pipeline/test_gpu.py 2>&1 | tail -4
for lanes in 2 1; do
timeout 150 python3 benchmarks/attack_throughput.py --config params.yaml --config config/paper.yaml \
  --victim c3d --method sva --method dense --method opt --method heuristic --budget 1000 --blocks 3 --block-seconds 2 \
  --in-flight 8 --lanes $lanes 2>&1 | grep -v "^c3d: NES"
done
