#!/bin/bash
# One megadocs worker per GPU node, as a Slurm job array: each array task starts a vLLM server on its node,
# waits until it answers, then runs megadocs against it on its share of the input shards (rank and world
# size come from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT). A dependent job merges the ranks' indexes.
#
#   mkdir -p logs && sbatch examples/slurm-array.sh      # 8 nodes, ranks 0..7 -> $OUT/rank-0000{0..7}/
#   sbatch --dependency=afterok:<array job id> --wrap "npx megadocs merge $OUT --world-size 8"
#
# Rerunning a failed task (sbatch --array=3 examples/slurm-array.sh) continues where it stopped: its run
# directory journals every completed LLM response. Set HF_TOKEN for gated/private inputs or --push-to.
#
# Settings come from the environment (sbatch passes the submitting shell's on), with these defaults:
#   MODEL, INPUT, OUT, PORT     the model vLLM serves, the inputs, the output directory, vLLM's port
#   SEQ_LEN=4096 CONCURRENCY=auto FORMAT=mds GENERATIONS=(the recipe's)   megadocs run's options
#   PUSH_TO=hf://datasets/ME/NAME   upload finished shards as the run goes
#   LLM_URL=http://HOST:PORT/v1     use this running server instead of starting vLLM on the node
#   MEGADOCS="npx megadocs"         how to start megadocs (e.g. "node /path/to/dist/bin/megadocs.js")
# On a cluster without GPUs (with LLM_URL), override the GPU and CPU lines on the command line:
#   sbatch --gpus-per-node=0 --cpus-per-task=1 examples/slurm-array.sh   (test/slurm/run.sh does this)
#SBATCH --job-name=megadocs
#SBATCH --array=0-7
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --output=logs/megadocs-%A_%a.log
set -euo pipefail

MODEL=${MODEL:-meta-llama/Llama-3.1-8B-Instruct}
INPUT=${INPUT:-hf://datasets/HuggingFaceFW/fineweb/sample/10BT/*.parquet}
OUT=${OUT:-$PWD/out/fineweb-megadocs}
PORT=${PORT:-8000}
SEQ_LEN=${SEQ_LEN:-4096}
CONCURRENCY=${CONCURRENCY:-auto}
FORMAT=${FORMAT:-mds}
read -ra MEGADOCS_COMMAND <<< "${MEGADOCS:-npx megadocs}"

if [ -z "${LLM_URL:-}" ]; then
  # The inference server: one per node, all of the node's GPUs (data parallel), on loopback only.
  vllm serve "$MODEL" --host 127.0.0.1 --port "$PORT" --data-parallel-size "${SLURM_GPUS_ON_NODE:-8}" \
    --max-num-seqs 512 --disable-log-requests > "logs/vllm-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.log" 2>&1 &
  VLLM_PID=$!
  trap 'kill "$VLLM_PID" 2>/dev/null || true' EXIT

  for _ in $(seq 1 180); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    kill -0 "$VLLM_PID" 2>/dev/null || { echo "vLLM exited; see its log" >&2; exit 1; }
    sleep 10
  done
  LLM_URL="http://127.0.0.1:$PORT/v1"
fi

# The worker: this rank's share of the input shards (balanced by size), written to $OUT/rank-NNNNN/.
# Without PUSH_TO the output stays local; with it, finished shards appear on the Hub as the run goes.
"${MEGADOCS_COMMAND[@]}" run "$INPUT" \
  --llm "$LLM_URL" --model "$MODEL" --concurrency "$CONCURRENCY" \
  --recipe rephrase ${GENERATIONS:+--generations "$GENERATIONS"} --assemble stitch \
  --format "$FORMAT" --seq-len "$SEQ_LEN" \
  --out "$OUT" ${PUSH_TO:+--push-to "$PUSH_TO"}
