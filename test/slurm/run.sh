#!/usr/bin/env bash
# `npm run test:slurm`: examples/slurm-array.sh under a real Slurm. Starts a one-node cluster (munge, slurmctld,
# slurmd; Debian's packages installed when missing) and a loopback LLM server, submits the example as a 4-task
# array plus its dependent merge job, and checks the merged dataset holds the documents of a one-rank run.
# Needs root (apt, daemons). Everything lives in one temp dir; every daemon is stopped on exit.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SHARED_DATA=$(cd "$REPO/../shared/data" && pwd)
CLI="$REPO/dist/bin/megadocs.js"
WORK=$(mktemp -d /tmp/megadocs-slurm-XXXXXX)
chmod 755 "$WORK" # munged wants its socket's folders open to all
STARTED=$SECONDS
PIDS=()
JOBS=()

log() { echo "test:slurm [$((SECONDS - STARTED))s] $*"; }
fail() { echo "test:slurm FAILED: $*" >&2; exit 1; }

cleanup() {
  local code=$?
  exec 9>&- # the LLM server stops when its stdin closes
  if [ "${#JOBS[@]}" -gt 0 ] && [ -n "$(squeue -h -j "$(IFS=,; echo "${JOBS[*]}")" -o %i 2> /dev/null)" ]; then
    scancel "${JOBS[@]}" 2> /dev/null || true
    for _ in $(seq 1 100); do [ -z "$(squeue -h -o %i 2> /dev/null)" ] && break; sleep 0.1; done
  fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$code" -ne 0 ]; then
    for file in "$WORK"/*.log "$WORK"/submit/logs/*.log; do
      if [ -f "$file" ]; then echo "--- $file" && tail -n 30 "$file"; fi
    done >&2
  fi
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || fail "needs root (it installs slurm-wlm and munge and starts their daemons)"
[ -f "$CLI" ] || fail "$CLI is missing: run npm run build first"

if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null || ! command -v munged > /dev/null; then
  log "installing slurm-wlm and munge (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge > "$WORK/apt.log"
fi
log "$(slurmctld -V), munge $(dpkg-query -W -f '${Version}' munge 2>/dev/null || echo '?')"

# munge: its own key, socket and state under $WORK.
mkdir -p "$WORK/munge" && chmod 755 "$WORK/munge"
mungekey --create --keyfile="$WORK/munge/munge.key" --force 2> /dev/null ||
  dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
MUNGE_SOCKET="$WORK/munge/munge.socket"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$WORK/munge/munged.pid" --seed-file="$WORK/munge/seed" > "$WORK/munged.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
[ -S "$MUNGE_SOCKET" ] || fail "munged did not start"

# slurm.conf: this host as the one node, its CPUs and memory as slurmd reports them; no cgroups, no accounting.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
NODE_LINE=$(slurmd -C | head -n 1)
NODE=$(hostname -s)
mkdir -p "$WORK/state" "$WORK/spool"
export SLURM_CONF="$WORK/slurm.conf"
cat > "$SLURM_CONF" << CONF
ClusterName=megadocs-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=600
$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -i -f "$SLURM_CONF" > "$WORK/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" -N "$NODE" > "$WORK/slurmd.out" 2>&1 &
PIDS+=($!)
STATE=
for _ in $(seq 1 120); do
  STATE=$(sinfo -h -n "$NODE" -o %T 2> /dev/null || true)
  [ "$STATE" = idle ] && break
  sleep 0.5
done
[ "$STATE" = idle ] || fail "node $NODE is '${STATE:-not reported}', not idle, after 60 s"
log "cluster up: node $NODE idle ($(echo "$NODE_LINE" | grep -o 'CPUs=[0-9]*'))"

# The loopback LLM server (deterministic answers); it serves until fd 9, its stdin, closes.
mkfifo "$WORK/server.in"
node --import tsx "$REPO/test/helpers/openai-server-main.ts" --latency-ms 5 < "$WORK/server.in" > "$WORK/server.out" 2> "$WORK/server.log" &
PIDS+=($!)
exec 9> "$WORK/server.in"
for _ in $(seq 1 100); do grep -q url "$WORK/server.out" 2> /dev/null && break; sleep 0.1; done
LLM_URL=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).url)' "$WORK/server.out") ||
  fail "the LLM server did not start"

# Input: 8 files (so 4 ranks get 2 each, balanced by size) of fineweb-300's first 160 documents.
mkdir -p "$WORK/input"
head -n 160 "$SHARED_DATA/fineweb-300.jsonl" > "$WORK/docs.jsonl"
split -n l/8 -d --additional-suffix=.jsonl "$WORK/docs.jsonl" "$WORK/input/part-"

# The example, unchanged, as a 4-task array (no GPUs here: the GPU and CPU lines overridden), then its merge.
export LLM_URL INPUT="$WORK/input" OUT="$WORK/out" MEGADOCS="node $CLI" FORMAT=megatron SEQ_LEN=1024 CONCURRENCY=16
mkdir -p "$WORK/submit/logs" && cd "$WORK/submit"
ARRAY=$(sbatch --parsable --array=0-3 --gpus-per-node=0 --cpus-per-task=1 "$REPO/examples/slurm-array.sh")
MERGE=$(sbatch --parsable --dependency="afterok:$ARRAY" --kill-on-invalid-dep=yes --output=logs/merge.log \
  --wrap "node $CLI merge $OUT --world-size 4")
JOBS=("$ARRAY" "$MERGE")
log "submitted array job $ARRAY (4 tasks) and merge job $MERGE"

# Meanwhile, the one-rank run of the same command, outside Slurm.
env -u SLURM_CONF OUT="$WORK/single" bash "$REPO/examples/slurm-array.sh" > "$WORK/single.log" 2>&1 ||
  fail "the one-rank run failed (see single.log)"

for _ in $(seq 1 600); do
  [ -z "$(squeue -h -j "$ARRAY,$MERGE" -o %i 2> /dev/null)" ] && break
  sleep 0.5
done
[ -z "$(squeue -h -j "$ARRAY,$MERGE" -o %i)" ] || fail "jobs still queued after 5 min: $(squeue -h -j "$ARRAY,$MERGE")"
for task in 0 1 2 3; do
  state=$(scontrol -o show job "${ARRAY}_$task" | grep -o 'JobState=[A-Z_]* .*ExitCode=[0-9:]*' | sed 's/ .* / /')
  [ "$state" = "JobState=COMPLETED ExitCode=0:0" ] || fail "array task $task: $state (see logs/megadocs-${ARRAY}_$task.log)"
done
state=$(scontrol -o show job "$MERGE" | grep -o 'JobState=[A-Z_]*')
[ "$state" = JobState=COMPLETED ] || fail "merge job: $state (see logs/merge.log)"
log "array tasks 0-3 and the merge job COMPLETED"

cd "$REPO" && node --import tsx test/slurm/compare.ts "$OUT" "$WORK/single" 4
log "passed"
