#!/usr/bin/env bash
# Bring up a real single-node Slurm cluster on this machine (Debian's slurm-wlm + munge), for the
# tests that submit job arrays.  Idempotent: if the cluster already answers, it only checks it.
# Runs as root (CI and the development machines are root); needs no systemd.
set -euo pipefail

say() { echo "start_slurm: $*"; }
node=$(hostname -s)
conf=/etc/slurm/slurm.conf

if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# --- munge: authentication between the Slurm daemons and clients
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null

# --- slurm.conf: one node, two partitions.  Plugins chosen to need neither cgroups nor systemd
# (proctrack/linuxproc, task/none); no accounting daemon, so `sacct` does not work (submitit warns).
# GNU nproc obeys OMP_NUM_THREADS / OMP_THREAD_LIMIT: without them it counts the CPUs this process may use
cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 9 / 10 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$conf.new" <<CONF
ClusterName=hpcbotan-ci
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
# the paper-shaped rehearsal (tests/pipeline/test_rehearsal.py) meets a small array limit: arrays are split
MaxArraySize=16
KillWait=5
Waittime=0
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
# a short time limit that jobs outlive (they requeue themselves); 12 jobs may share a core, so that
# tens of them hit the limit at once on a 2-core machine
PartitionName=short Nodes=${node} MaxTime=2 OverSubscribe=FORCE:12 State=UP
CONF
if ! cmp -s "$conf.new" "$conf"; then
  mv "$conf.new" "$conf"
  changed=1
else
  rm "$conf.new"
  changed=0
fi

node_state() { { sinfo -h -n "$node" -o %T 2>/dev/null || true; } | head -n 1 | tr -d '*~#'; }
controller_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }
stop_daemon() {  # stop and wait until it is really gone (a dying daemon still shows in pgrep)
  pkill -x "$1" 2>/dev/null || true
  for _ in $(seq 100); do pgrep -x "$1" >/dev/null || return 0; sleep 0.1; done
  pkill -9 -x "$1" 2>/dev/null || true
}

if [ "$changed" = 1 ] || ! controller_up; then
  stop_daemon slurmctld
  say "starting slurmctld"
  slurmctld
  for _ in $(seq 100); do controller_up && break; sleep 0.2; done
fi
if [ "$changed" = 1 ] || ! pgrep -x slurmd >/dev/null; then
  stop_daemon slurmd
  say "starting slurmd"
  slurmd
fi

state=""
for _ in $(seq 120); do
  state=$(node_state)
  case "$state" in
    idle|mixed|allocated|completing) break ;;
    down|drained|draining|fail) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
case "$state" in
  idle|mixed|allocated|completing) ;;
  *)
    say "node $node is '$state' after 60 s"
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    exit 1 ;;
esac

# --- self-check: a two-task job array really runs
out=$(mktemp -d)
if ! sbatch --wait --quiet --array=0-1 --time=2 --output="$out/check-%a.out" \
     --wrap 'echo task $SLURM_ARRAY_TASK_ID' >/dev/null; then
  say "self-check job array failed"
  tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  exit 1
fi
grep -qx "task 0" "$out/check-0.out" && grep -qx "task 1" "$out/check-1.out"
rm -rf "$out"
say "ready (node $node, $cpus CPUs, partitions debug and short)"
