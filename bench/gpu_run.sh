#!/usr/bin/env bash
# The throughput benchmark on a bare GPU machine, in one go (issue 4, part 4). Run from the repo root:
#
#     bash bench/gpu_run.sh            # results go to $OUT (or ./gpu-out)
#
# Needs .devcarry/perf/ (git-ignored, carried with the working tree): bases/ holds the real base photos
# the 12 MP corpus is made from, whl/ the hnswlib sdist, pybind11 to build it and platformdirs (the
# app's Library needs them; without them the Library.index pass and the query latency are skipped).
# The model has random weights (the real ones are too large to carry): same speed, meaningless vectors.
# Knobs for a quick local try on the CPU: PYTHON, DEVICE, PRECISION, COUNT, REPEAT, ROUNDS, QUERY_INDEX.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}
COUNT=${COUNT:-320}
REPEAT=${REPEAT:-4}
ROUNDS=${ROUNDS:-3}
QUERY_INDEX=${QUERY_INDEX:-100000}
CARRY=.devcarry/perf
CORPUS=${CORPUS:-/tmp/vg-12mp}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
started=$(date +%s)
stamp() { echo "[$(( $(date +%s) - started )) s] $*"; }

{
  stamp "environment"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  echo "cores: $(nproc)"; uptime
  "$PYTHON" -c "import sys, torch, timm, PIL, numpy; print(sys.version.split()[0], 'torch', torch.__version__, \
'timm', timm.__version__, 'pillow', PIL.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/env.txt"

# hnswlib has no wheels: build it from the carried sdist while the corpus is being made.
SITE=/tmp/vg-site
pip_install() { "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
  --target "$SITE" "$@"; }
( pip_install "$CARRY"/whl/*.whl && PYTHONPATH=$SITE pip_install "$CARRY"/whl/hnswlib-*.tar.gz \
  && echo "hnswlib built" ) > "$OUT/build.log" 2>&1 &
builder=$!

stamp "making the 12 MP corpus" | tee -a "$OUT/env.txt"
timeout 150 "$PYTHON" bench/make_12mp_corpus.py "$CARRY/bases" "$CORPUS" --count "$COUNT" --workers "$(nproc)" \
  2>&1 | tee -a "$OUT/env.txt"
wait "$builder"
"$PYTHON" -c "import sys; sys.path.append('$SITE'); import hnswlib, platformdirs" 2>/dev/null \
  && export PYTHONPATH=$PYTHONPATH:$SITE
stamp "corpus ready; Library available: $("$PYTHON" -c 'import hnswlib' 2>/dev/null && echo yes || echo no)" \
  | tee -a "$OUT/env.txt"

# Main run: decode-only (every core), model-only and end-to-end interleaved, Library.index, stage costs,
# query latency at 100k vectors.
timeout 200 "$PYTHON" bench/throughput.py --corpus "$CORPUS" --device "$DEVICE" --precision "$PRECISION" \
  --repeat "$REPEAT" --rounds "$ROUNDS" --query-index "$QUERY_INDEX" --queries 40 \
  --json "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.txt"
stamp "main run done" | tee -a "$OUT/env.txt"

# torch.compile: does it pay when decoding is the limit anyway?
if [ "$DEVICE" = cuda ]; then
  timeout 150 "$PYTHON" bench/throughput.py --corpus "$CORPUS" --device "$DEVICE" --precision "$PRECISION" \
    --compile --repeat "$REPEAT" --rounds 2 --no-library --query-index 0 --stage-samples 0 \
    2>&1 | tee "$OUT/compiled.txt"
  stamp "compiled run done" | tee -a "$OUT/env.txt"
fi
