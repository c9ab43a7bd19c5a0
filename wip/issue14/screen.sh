#!/usr/bin/env bash
# Issue 14 design screen: train each variant briefly (1 thread), then score it. Resumable: rerun the same command.
set -u
W=${W:-/work/minisd-work}; STEPS=${STEPS:-1500}; PY=${PY:-/work/main/.venv/bin/python}
export PYTHONPATH=${SRC:-/work/bg/src} OMP_NUM_THREADS=1
for v in ${VARIANTS:-base t2 narrow}; do
  $PY -m revival.minisd.build unet --variant $v --steps $STEPS --workdir $W --threads 1 || exit 1
  [ -f $W/screen-$v.done ] || { $PY ${BENCH:-/work/bg/benchmarks}/mini_design_screen.py --pipeline $W/pipeline-$v-$STEPS \
      --variant $v --evaluator $W/evaluator.safetensors --threads 1 && touch $W/screen-$v.done; }
done
