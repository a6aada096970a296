#!/usr/bin/env bash
# GPU readiness check for a machine with CUDA and a python3 that has torch (see
# docs/distributed.md).  It installs nothing into the system: the repository is put on
# PYTHONPATH, and missing pure-Python packages come from wheels in .whl/ (offline) or,
# failing that, from the package index.  Logs go to $OUT (default out/gpu_check).
#
#   bash scripts/gpu_check.sh            # all steps; exits non-zero if any failed
#
# Steps: 1. environment; 2. the comparisons on cuda: Table 1 (full sizes; TABLE1_ARGS=--quick
# for tiny ones) and the extras; 3. the GPU, compile and distributed tests
# (tests/test_gpu.py, tests/test_compile.py, tests/test_distributed.py); 4. the VAE example
# on cuda, plain and under torchrun --distributed (nccl, 1 process).  At most 8 files land
# in $OUT (the device tool returns 8; Table 1's chart is left to `comparisons.report`);
# GPU_TESTS overrides the test files.  The run stays under 10 minutes.
#
# Offline machines: fetch the wheels beforehand, where pip works, into the ignored .whl/:
#   python -m pip download --no-deps --only-binary=:all: -d .whl \
#       pyro-ppl==1.9.2 pyro-api==0.1.2 mlxtend==0.25.0
# and, for real images in the table, Fashion-MNIST's IDX files into the ignored .fmnist/
# (cp /usr/share/datasets/fashion-mnist/*.gz .fmnist/).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
status=0
step() { echo; echo "=== $*"; }

step "1. environment"
need=()
for mod in pyro:pyro-ppl pyroapi:pyro-api mlxtend:mlxtend; do
  "$PY" -c "import ${mod%%:*}" 2>/dev/null || need+=("${mod##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "missing: ${need[*]}"
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/pixyz_site .whl/*.whl && export PYTHONPATH=/tmp/pixyz_site
  else
    "$PY" -m pip install -q "${need[@]}" || echo "pip could not install ${need[*]}"
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Fashion-MNIST's IDX files, carried into the ignored .fmnist/ where apt cannot run
[ -d .fmnist ] && export PIXYZ_PYRO_DATA="$PWD/.fmnist"
"$PY" - <<'EOF' 2>&1 | tee "$OUT/env.txt"
import torch, pyro
print("python torch", torch.__version__, "| pyro", pyro.__version__)
print("cuda available:", torch.cuda.is_available(),
      "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU",
      "| nccl:", torch.distributed.is_available() and torch.distributed.is_nccl_available())
EOF
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "no CUDA here: nothing to check"; exit 1; }

step "2. the comparisons on cuda: Table 1 (TABLE1_ARGS='--quick' for tiny sizes), extras"
# First, as they are the longest step: Table 1 keeps the sizes it finished if cut short.  On
# a GPU the kernels sum in other orders than eager code, hence the 1e-4 tolerance of the
# same-objective checks.  TORCH_LOGS=perf_hints prints why CUDA graphs skip a graph.
# shellcheck disable=SC2086
TORCH_LOGS=${TORCH_LOGS:-perf_hints} timeout "${TABLE1_TIMEOUT:-270}" "$PY" -m \
  comparisons.table1 --device cuda --out "$OUT/table1" ${TABLE1_ARGS:---tolerance 1e-4 --no-plot} \
  2>&1 | tee "$OUT/comparisons.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
timeout 90 "$PY" -m comparisons.extras --device cuda --tolerance 1e-4 --out "$OUT/extras" 2>&1 \
  | tee -a "$OUT/comparisons.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "3. GPU, compile and distributed tests"
# shellcheck disable=SC2086
timeout 120 "$PY" -m pytest -q -p no:cacheprovider -rs \
  ${GPU_TESTS:-tests/test_gpu.py tests/test_compile.py tests/test_distributed.py} 2>&1 \
  | tee "$OUT/pytest.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "4. VAE example on cuda (mnist-5k), plain and torchrun --distributed (nccl, 1 rank)"
args=(--device cuda --dataset mnist-5k --epochs 1 --limit 2048 --test-limit 500 --no-progress)
timeout 45 "$PY" -m examples.vae "${args[@]}" --out /tmp/gpu_check/vae 2>&1 \
  | tee "$OUT/examples.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
timeout 45 "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
  -m examples.vae --distributed "${args[@]}" --out /tmp/gpu_check/vae_ddp 2>&1 \
  | tee -a "$OUT/examples.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "done: status $status (logs in $OUT)"
exit $status
