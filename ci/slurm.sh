#!/usr/bin/env bash
# A sharded sweep as a real Slurm job array.
#
# Starts a single-node Slurm in a temporary directory (slurmctld and slurmd
# from Debian's slurm-wlm packages, a minimal slurm.conf, its own ports, no
# accounting; auth/none where the installed Slurm still has it, else munged
# with a generated key), submits `kvsim sweep --shard auto` as
# `sbatch --array=0-3 --wait` on a bundled scenario's sweep, merges the four
# shards with `kvsim merge` and compares the result with the single-machine
# `kvsim sweep`'s sweep.csv, byte for byte. Before it, two arrays kvsim must
# refuse (a step, `--array=0-6:2`, and a list with gaps, `--array=0,2,5`):
# every task must exit 2 naming the variable, and write no shard.
#
#   ci/slurm.sh [KVSIM]     KVSIM: the kvsim binary (default target/release/kvsim)
#
# Exit 0 with "slurm test passed", or with "slurm test skipped: <why>" and the
# exact error when Slurm cannot be installed (apt-get, with sudo -n when not
# root) or its daemons cannot run here: CI must not fail for the sandbox's
# sake. Exit 1 when Slurm ran the array and kvsim got it wrong. Every wait has
# a timeout; the daemons are stopped (by their process ids) on every exit.
# KVSIM_SLURM_AUTH=munge skips the auth/none attempt.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
started=$SECONDS

kvsim=${1:-${CARGO_TARGET_DIR:-target}/release/kvsim}
[[ $kvsim == /* ]] || kvsim=$root/$kvsim
if [[ ! -x $kvsim ]]; then
  echo "ci/slurm.sh: no kvsim binary at $kvsim (cargo build --release first)" >&2
  exit 1
fi
scenario=$root/scenarios/window-long-context.toml # 10 points, a fraction of a second

say() { echo "slurm: $*"; }
skip() {
  echo "slurm test skipped: $*"
  exit 0
}
fail() {
  echo "slurm test FAILED: $*" >&2
  keep=1
  exit 1
}

# Whatever Slurm or Kubernetes job this script runs in is not the one tested.
for v in $(compgen -e | grep -E '^(SLURM_|SBATCH_|SRUN_|SALLOC_)') JOB_COMPLETION_INDEX; do
  unset "$v"
done

if [[ $(id -u) == 0 ]]; then
  sudo=()
elif sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  skip "slurmd must run as root, and this user is not root and has no passwordless sudo"
fi

# --- Install -----------------------------------------------------------------
have_slurm() { command -v slurmctld && command -v slurmd && command -v sbatch && command -v scontrol; } >/dev/null
if ! have_slurm; then
  say "installing slurmctld slurmd slurm-client munge (apt-get)"
  packages=(slurmctld slurmd slurm-client munge)
  install() {
    DEBIAN_FRONTEND=noninteractive timeout 300 "${sudo[@]}" \
      apt-get install -y --no-install-recommends "${packages[@]}" 2>&1
  }
  if ! out=$(install); then
    # A fresh image may have no package lists yet.
    update=$(DEBIAN_FRONTEND=noninteractive timeout 120 "${sudo[@]}" apt-get update 2>&1) ||
      skip "apt-get update failed: $(tail -n 3 <<<"$update")"
    out=$(install) || skip "apt-get install ${packages[*]} failed: $(tail -n 5 <<<"$out")"
  fi
  have_slurm || skip "slurmctld, slurmd, sbatch or scontrol still missing after apt-get install"
fi

# --- A single-node cluster in a temporary directory --------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/kvsim-slurm.XXXXXX")
keep=0
pids=()      # slurmctld and slurmd, as started here
munge_pid="" # munged, when auth/munge
# Waits up to $1 tenths of a second for processes $2... to exit.
wait_pids() {
  local n=$1 alive p
  shift
  for _ in $(seq "$n"); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}
# Stops the daemons started here, by process id: slurmctld and slurmd by
# scontrol shutdown (SIGTERM, then SIGKILL, if they linger), then munged.
stop_daemons() {
  local p
  if ((${#pids[@]})); then
    # pids[0] is slurmctld: if it is gone, nothing would pass the shutdown on.
    kill -0 "${pids[0]}" 2>/dev/null && timeout 5 scontrol shutdown >/dev/null 2>&1
    if ! wait_pids 30 "${pids[@]}"; then
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && "${sudo[@]}" kill "$p" 2>/dev/null; done
      wait_pids 20 "${pids[@]}" ||
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && "${sudo[@]}" kill -9 "$p" 2>/dev/null; done
    fi
  fi
  if [[ -n $munge_pid ]]; then
    "${sudo[@]}" kill "$munge_pid" 2>/dev/null
    wait_pids 20 "$munge_pid" || "${sudo[@]}" kill -9 "$munge_pid" 2>/dev/null
  fi
  pids=()
  munge_pid=""
}
cleanup() {
  # Jobs first (their slurmstepd outlive slurmd), then the daemons.
  ((${#pids[@]})) && timeout 5 scancel --quiet --user="$(id -un)" >/dev/null 2>&1
  stop_daemons
  if ((keep)); then
    echo "slurm: logs and files kept in $T" >&2
  else
    "${sudo[@]}" rm -rf "$T"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
[[ -n ${KVSIM_SLURM_KEEP:-} ]] && keep=1

# Two free TCP ports in a row.
port=0
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
    port=$p
    break
  fi
done
((port)) || skip "no two free TCP ports found for slurmctld and slurmd"

host=$(uname -n)
host=${host%%.*}
export SLURM_CONF=$T/slurm.conf

# Writes slurm.conf for auth $1 (none or munge).
write_conf() {
  local auth=$1 extra=""
  [[ $auth == munge ]] && extra="AuthInfo=socket=$T/munge/munge.sock"
  mkdir -p "$T/state" "$T/spool"
  cat >"$SLURM_CONF" <<EOF
ClusterName=kvsimci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/$auth
CredType=cred/$auth
$extra
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=kvsimci NodeAddr=127.0.0.1 CPUs=16 State=UNKNOWN
PartitionName=ci Nodes=kvsimci Default=YES MaxTime=10 State=UP
EOF
}

start_munge() {
  command -v munged >/dev/null || {
    why="munged not installed"
    return 1
  }
  mkdir -p "$T/munge"
  chmod 700 "$T/munge"
  "${sudo[@]}" sh -c "umask 077; head -c 1024 /dev/urandom > '$T/munge/munge.key'"
  "${sudo[@]}" munged --foreground --force --key-file="$T/munge/munge.key" \
    --socket="$T/munge/munge.sock" --pid-file="$T/munge/munged.pid" \
    --log-file="$T/munge/munged.log" --seed-file="$T/munge/munged.seed" \
    >"$T/munge/munged.out" 2>&1 &
  munge_pid=$!
  for _ in $(seq 50); do
    [[ -S $T/munge/munge.sock ]] && return 0
    kill -0 "$munge_pid" 2>/dev/null || break
    sleep 0.1
  done
  why="munged did not start: $(tail -n 5 "$T/munge/munged.out" "$T/munge/munged.log" 2>/dev/null)"
  return 1
}

# The last errors a daemon's output $1 holds, on one line, without the
# harmless ones of a fresh start (no saved state, no PMIx library).
errors() {
  local e
  e=$(grep -iE 'error|fatal' "$1" 2>/dev/null |
    grep -viE 'state file|state save|reservations may be lost|pmix|MPI: ' |
    sed -E 's/^(slurmctld|slurmd): //' | tail -n 3 | paste -sd '|' | sed 's/|/ | /g')
  echo "${e:-no error logged}"
}

# Starts slurmctld and slurmd with auth $1 and waits (15 s at most) for the
# node to be idle; on failure sets `why` to the daemons' last words.
start_slurm() {
  local auth=$1
  write_conf "$auth"
  if [[ $auth == munge ]]; then start_munge || return 1; fi
  "${sudo[@]}" env SLURM_CONF="$SLURM_CONF" slurmctld -D -c -i -f "$SLURM_CONF" \
    >"$T/slurmctld.$auth.out" 2>&1 &
  local ctld=$!
  pids+=("$ctld")
  local up=0
  for _ in $(seq 50); do
    timeout 2 scontrol ping 2>/dev/null | grep -q 'is UP' && up=1 && break
    kill -0 "$ctld" 2>/dev/null || break
    sleep 0.1
  done
  if ((!up)); then
    why="with auth/$auth slurmctld $(kill -0 "$ctld" 2>/dev/null && echo "did not answer" ||
      echo exited): $(errors "$T/slurmctld.$auth.out")"
    return 1
  fi
  "${sudo[@]}" env SLURM_CONF="$SLURM_CONF" slurmd -D -c -N kvsimci -f "$SLURM_CONF" \
    >"$T/slurmd.$auth.out" 2>&1 &
  local d=$!
  pids+=("$d")
  local state=""
  for _ in $(seq 150); do
    state=$(timeout 2 sinfo -h -n kvsimci -o %t 2>&1)
    [[ $state == idle ]] && return 0
    { kill -0 "$ctld" && kill -0 "$d"; } 2>/dev/null || break
    sleep 0.1
  done
  why="with auth/$auth the node never became idle (sinfo: ${state:-nothing}); \
slurmctld: $(errors "$T/slurmctld.$auth.out"); slurmd: $(errors "$T/slurmd.$auth.out")"
  return 1
}

stop_slurm() {
  stop_daemons
  "${sudo[@]}" rm -rf "$T/state" "$T/spool"
}

auth=none
why=""
if [[ ${KVSIM_SLURM_AUTH:-} == munge ]] || ! start_slurm none; then
  first=$why
  [[ -n $first ]] && say "auth/none failed ($first); trying auth/munge"
  stop_slurm
  auth=munge
  start_slurm munge || skip "single-node Slurm did not start. ${first:+auth/none: $first. }auth/munge: $why"
fi
version=$(timeout 5 sbatch --version 2>&1 | head -n 1)
say "single-node $version up (auth/$auth, ports $port-$((port + 1))) in $((SECONDS - started)) s"

# --- The job arrays -----------------------------------------------------------
q() { printf '%q' "$1"; }
cat >"$T/shard.sh" <<EOF
#!/bin/sh
touch $(q "$T")/started.\$SLURM_ARRAY_JOB_ID.\$SLURM_ARRAY_TASK_ID
exec $(q "$kvsim") sweep $(q "$scenario") --no-plots --threads 1 --shard auto --out \$1
EOF
chmod +x "$T/shard.sh"

submit() { # NAME ARRAY [--wait]: sbatch the shard script into $T/NAME
  mkdir -p "$T/$1"
  timeout 60 sbatch --parsable --job-name="kvsim-$1" --array="$2" "${@:3}" \
    --chdir="$T" --output="$T/$1/task-%a.out" --error="$T/$1/task-%a.err" \
    "$T/shard.sh" "$T/$1"
}
job_id() { [[ $1 =~ ^[0-9]+ ]] && echo "${BASH_REMATCH[0]}"; }
queue() { timeout 5 squeue -h -o '%i %T %r' 2>&1 | head -n 5; }
slurmd_errors() { errors "$T/slurmd.$auth.out"; }

# --- Arrays kvsim must refuse: a step, and a list with gaps ------------------
# They go first: a fresh slurmctld schedules its first jobs a few seconds
# after it starts; then the array under test is scheduled at once.
t0=$SECONDS
out=$(submit step 0-6:2 2>&1)
step=$(job_id "$out") || skip "sbatch did not take a job: $out"
out=$(submit list 0,2,5 2>&1)
list=$(job_id "$out") || skip "sbatch did not take a job: $out"
for _ in $(seq 150); do
  [[ -z $(timeout 2 squeue -h -j "$step,$list" 2>/dev/null) ]] && break
  sleep 0.2
done
if [[ -z $(find "$T" -maxdepth 1 -name "started.*") ]]; then
  skip "Slurm took the arrays but ran none of their tasks in 30 s: queue: $(queue); slurmd: $(slurmd_errors)"
fi
[[ -z $(timeout 2 squeue -h -j "$step,$list" 2>/dev/null) ]] ||
  fail "the refused arrays still run after 30 s: $(queue)"
check_refused() { # NAME IDS NEEDLE
  local id
  for id in $2; do
    local err=$T/$1/task-$id.err
    [[ -f $err ]] || fail "--array $1: task $id left no output"
    grep -q "error: --shard auto: .*$3" "$err" || fail "--array $1: task $id was not refused: $(cat "$err")"
  done
  [[ -z $(ls "$T/$1"/sweep.shard-* 2>/dev/null) ]] || fail "--array $1 wrote a shard"
}
check_refused step "0 2 4 6" "SLURM_ARRAY_TASK_STEP=2: the array's task ids have gaps"
check_refused list "0 2 5" "SLURM_ARRAY_TASK_MAX=5 and SLURM_ARRAY_TASK_COUNT=3 are not one range"
say "--array=0-6:2 and --array=0,2,5 refused in every task, naming the variable ($((SECONDS - t0)) s)"

# --- The array under test -----------------------------------------------------
t0=$SECONDS
out=$(submit good 0-3 --wait 2>&1)
rc=$?
say "sbatch --array=0-3 --wait: exit $rc after $((SECONDS - t0)) s"
good=$(job_id "$out") || skip "sbatch did not take the job array (exit $rc): $out"
n_started=$(find "$T" -maxdepth 1 -name "started.$good.*" | wc -l)
if ((rc == 124)); then
  ((n_started)) || skip "the job array never started within 60 s: $(queue)"
  fail "sbatch --wait did not return within 60 s; queue: $(queue)"
fi
((n_started)) || skip "Slurm took the array but ran none of its tasks (sbatch exit $rc): slurmd: $(slurmd_errors)"
((rc == 0)) || fail "the array's tasks failed (sbatch exit $rc): $(cat "$T"/good/task-*.err)"
for i in 0 1 2 3; do
  grep -q "shard $i/4 (from SLURM_ARRAY_TASK_ID=$i, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=4)" \
    "$T/good/task-$i.err" || fail "task $i did not take shard $i/4: $(cat "$T/good/task-$i.err")"
done

# --- Merged shards against the single-machine sweep --------------------------
"$kvsim" merge "$T"/good/sweep.shard-{0,1,2,3}-of-4.csv --out "$T/merged.csv" >"$T/merge.out" 2>&1 ||
  fail "kvsim merge: $(cat "$T/merge.out")"
"$kvsim" sweep "$scenario" --no-plots --out "$T/single" >"$T/single.out" 2>&1 ||
  fail "the single-machine sweep: $(cat "$T/single.out")"
cmp "$T/merged.csv" "$T/single/sweep.csv" ||
  fail "the merged table differs from the single-machine sweep.csv: $(diff "$T/merged.csv" "$T/single/sweep.csv" | head -n 10)"
say "4 shards from the job array merged into the single-machine sweep.csv, byte for byte ($(($(wc -l <"$T/merged.csv") - 1)) points)"

echo "slurm test passed in $((SECONDS - started)) s ($version, auth/$auth)"
