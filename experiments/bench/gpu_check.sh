#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU (issue 15): install JAX with CUDA from PyPI, check that JAX sees the
# GPU, run the paper-scale bench and the end-to-end fits on it, and write a results file.
#
#   bash experiments/bench/gpu_check.sh [--out FILE] [--wheelhouse DIR] [--dry-run]
#
#   --out FILE        results file (default experiments/results/bench_gpu.md)
#   --wheelhouse DIR  install JAX's CUDA wheels from DIR (pip --no-index --find-links) for a machine without PyPI
#   --dry-run         no GPU needed: skip the install, run the same steps on the CPU at a small size
#                     (JAX_PLATFORMS=cpu; paper bench at 300 LLMs x 3,000 items, one e2e fit), to test the script
#
# Steps: nvidia-smi (the card's name and driver) -> pip install "jax[cuda12]" (cuda13 with a CUDA 13 driver) ->
# python -c "import jax; jax.devices('gpu')" -> bench_scale.py --mode paper (package vs dense formula; the eigh
# children run on the CPU, where the dense route would build √S) -> bench_scale.py --mode e2e (bayes-simrmf fit,
# device auto = the GPU) -> the results file with the machine, the versions and both outputs.
set -euo pipefail

OUT="experiments/results/bench_gpu.md"
WHEELHOUSE=""
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --wheelhouse) WHEELHOUSE="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python}"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
LOG="$SCRATCH/log.txt"
say() { echo "$@" | tee -a "$LOG"; }

if [ "$DRY_RUN" = 1 ]; then
  export JAX_PLATFORMS=cpu
  CARD="none (dry run on the CPU)"
  PAPER_ARGS=(--shape 300 3000 --skip-normal --dense-steps 2 --eigh-sizes 500 1000)
  E2E_ARGS=(--e2e-variants mmlupro-T300 --quiet-output)
else
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check.sh: nvidia-smi not found: no NVIDIA GPU on this machine (use --dry-run to test the script on a CPU)" >&2
    exit 1
  fi
  CARD="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
  CUDA_MAJOR="$(nvidia-smi | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -1)"
  EXTRA="cuda12"
  if [ "${CUDA_MAJOR:-12}" -ge 13 ]; then EXTRA="cuda13"; fi
  say "installing jax[$EXTRA] (CUDA major version of the driver: ${CUDA_MAJOR:-unknown})"
  if [ -n "$WHEELHOUSE" ]; then
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELHOUSE" "jax[$EXTRA]"
  else
    "$PYTHON" -m pip install --quiet -U "jax[$EXTRA]"
  fi
  "$PYTHON" -m pip install --quiet --no-deps -e . >/dev/null
  PAPER_ARGS=(--eigh-sizes 2000 4000 8000)
  E2E_ARGS=(--quiet-output)
fi

say "card: $CARD"
"$PYTHON" - <<'EOF' | tee -a "$LOG"
import os, jax
devices = jax.devices()
print(f"jax {jax.__version__}, default backend {jax.default_backend()}, devices {devices}")
if os.environ.get("JAX_PLATFORMS") != "cpu" and jax.default_backend() != "gpu":
    raise SystemExit("gpu_check.sh: JAX does not see a GPU after the install (see the pip output above)")
EOF

say "running the paper-scale bench ..."
"$PYTHON" experiments/bench/bench_scale.py --mode paper "${PAPER_ARGS[@]}" --scratch "$SCRATCH/paper" > "$SCRATCH/paper.txt" 2>&1 \
  || { tail -40 "$SCRATCH/paper.txt" >&2; exit 1; }
say "running the end-to-end fits ..."
"$PYTHON" experiments/bench/bench_scale.py --mode e2e "${E2E_ARGS[@]}" --scratch "$SCRATCH/e2e" > "$SCRATCH/e2e.txt" 2>&1 \
  || { tail -40 "$SCRATCH/e2e.txt" >&2; exit 1; }

mkdir -p "$(dirname "$OUT")"
{
  echo "# GPU check (experiments/bench/gpu_check.sh$([ "$DRY_RUN" = 1 ] && echo ' --dry-run'))"
  echo
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); card: $CARD; $(uptime | sed 's/.*load average/load average/')"
  echo
  echo '```'
  cat "$LOG"
  echo '```'
  echo
  echo "## Paper scale: package vs dense formula"
  echo
  echo '```'
  cat "$SCRATCH/paper.txt"
  echo '```'
  echo
  echo "## End to end: bayes-simrmf fit"
  echo
  echo '```'
  cat "$SCRATCH/e2e.txt"
  echo '```'
} > "$OUT"
echo "written to $OUT"
