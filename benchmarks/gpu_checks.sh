#!/usr/bin/env bash
# The GPU checks, as one prepared run on a CUDA machine: the CUDA path (the
# test suite with device='auto' resolving to the GPU) and GPU timings.
#
#   DEEPCLUSTER_SK_DATA=../shared/data OUT=benchmarks/results/gpu bash benchmarks/gpu_checks.sh
#
# Steps, in this order, each under its own time limit and all under BUDGET
# seconds (default 540; a step that would start with under 25 s left is
# skipped and says so):
#   env      nvidia-smi and the versions of the Python packages used
#   pytest   the test suite on the GPU (estimators default to device='auto')
#   usps     DeepFuzzyCMeans on USPS with the defaults (+ image_shape), seeds 0-2,
#            precision 'auto' (bf16 on a GPU that has it) and then 'fp32':
#            issue 14's stability figure (spread of ACC over 3 seeds x {fp32, bf16})
#   mnist    DeepFuzzyCMeans on MNIST with the defaults, seed 0 (precision 'auto')
#   s2i      benchmarks/bench_signal_to_image.py --device cuda on $S2I_DATA
#            (a BloodMNIST-layout .npz; default $DEEPCLUSTER_SK_DATA/bloodmnist.npz)
# WHEELS (optional) is a folder of wheels installed first (packages the GPU
# machine's image lacks: skorch, kornia, faiss-cpu).
# Results: $OUT/checks.log (everything printed), pytest.log, usps.jsonl,
# mnist.jsonl, s2i.jsonl.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
DATA=${DEEPCLUSTER_SK_DATA:-../shared/data}
S2I_DATA=${S2I_DATA:-$DATA/bloodmnist.npz}
BUDGET=${BUDGET:-540}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
T0=$(date +%s)
export PYTHONUNBUFFERED=1 DEEPCLUSTER_SK_DATA="$DATA"
exec > >(tee -a "$OUT/checks.log") 2>&1

if [ -n "${WHEELS:-}" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi

step() {  # step NAME CAP_SECONDS COMMAND...
    local name=$1 cap=$2
    shift 2
    local left=$((BUDGET - ($(date +%s) - T0)))
    local limit=$((cap < left - 5 ? cap : left - 5))
    if [ "$limit" -lt 25 ]; then
        echo "== $name: skipped, $left s of the budget left"
        return
    fi
    echo "== $name: start $(date +%T), limit $limit s"
    local t=$(date +%s)
    timeout "$limit" "$@"
    echo "== $name: rc $? after $(($(date +%s) - t)) s"
}

step env 30 bash -c "nvidia-smi -L; $PY -c 'import sys, torch, sklearn, numpy, skorch, kornia, faiss; \
print(sys.version.split()[0], \"torch\", torch.__version__, \"sklearn\", sklearn.__version__, \"numpy\", \
numpy.__version__, \"skorch\", skorch.__version__, \"kornia\", kornia.__version__, \"faiss\", faiss.__version__); \
print(\"cuda\", torch.cuda.is_available(), torch.cuda.get_device_name(0), \"bf16\", torch.cuda.is_bf16_supported())'"

step pytest 130 bash -c "$PY -m pytest -q -p no:randomly -n 12 --timeout 90 -rfE tests \
    --ignore=tests/test_docs.py > $OUT/pytest.log 2>&1; rc=\$?; tail -40 $OUT/pytest.log; exit \$rc"

for precision in auto fp32; do
    step "usps-$precision" 160 $PY benchmarks/run_benchmark.py --datasets usps --methods dfcm \
        --seeds 0 1 2 --precision "$precision" --set image_shape=[1,16,16] --out "$OUT/usps.jsonl"
done

step mnist 130 $PY benchmarks/run_benchmark.py --datasets mnist --methods dfcm --seeds 0 \
    --precision auto --out "$OUT/mnist.jsonl"

step s2i 110 $PY benchmarks/bench_signal_to_image.py --device cuda --data "$S2I_DATA" --seeds 0 \
    --epochs 10 --out "$OUT/s2i.jsonl"

for f in usps mnist; do
    [ -s "$OUT/$f.jsonl" ] && $PY benchmarks/run_benchmark.py --summarize "$OUT/$f.jsonl"
done
echo "== done after $(($(date +%s) - T0)) s"
