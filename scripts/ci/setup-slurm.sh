#!/usr/bin/env bash
# A real single-node Slurm 22.05 cluster (node "localhost", partition "debug") for the slurm
# launcher tests (idempotent). Every Slurm CLI call needs SLURM_CONF=$HESTIA_CI_DIR/slurm/slurm.conf.
# munged is started only when no working munge is running; then its PID is recorded so the
# teardown stops only a munged this script started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
D=$HESTIA_CI_DIR/slurm
export SLURM_CONF=$D/slurm.conf
ensure_pkgs "slurmctld /usr/sbin/slurmd sbatch munged" slurmctld slurmd slurm-client munge
# Restarting: stop previous daemons by PID file. (A second slurmd kills the first via its pid
# file anyway, leaving the node stuck "comp": always restart both together.)
kill_pidfile "$D/slurmd.pid"
kill_pidfile "$D/slurmctld.pid"
mkdir -p "$D/state" "$D/spool" "$D/log"
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged          # forks; pid in /run/munge/munged.pid
  for i in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$D/munged.pid"      # ours: teardown may stop it
fi
cat > "$SLURM_CONF" <<CFG
ClusterName=hestia
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CFG
/usr/sbin/slurmctld -c              # daemonizes; -c = start with a clean job state
/usr/sbin/slurmd -N localhost       # daemonizes
for i in $(seq 150); do [ "$(sinfo -h -n localhost -o '%t' 2>/dev/null)" = idle ] && break; sleep 0.2; done
state=$(sinfo -h -n localhost -o '%t' 2>/dev/null || true)
[ "$state" = idle ] || { log "slurm node not idle (state '$state'); see $D/log"; exit 1; }
log "slurm ready: $(sinfo -h -o '%P %a %D %t %N') (SLURM_CONF=$SLURM_CONF)"
