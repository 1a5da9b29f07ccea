#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by scripts/slurm-up.sh and remove its state ($CEP_SLURM_DIR).
set -uo pipefail

DIR="${CEP_SLURM_DIR:-/tmp/cep-slurm}"
CONF="$DIR/etc/slurm.conf"
SYSTEM_CONF=/etc/slurm/slurm.conf

stop_pidfile() {
    local name="$1" pidfile="$2" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $name (pid $pid) ignored SIGTERM for 5s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
}

if [ -f "$CONF" ] && command -v scancel >/dev/null 2>&1; then
    # Cancel whatever still runs so no job process outlives the cluster.
    SLURM_CONF="$CONF" timeout 10 scancel --full --signal=KILL --state=RUNNING --user="$(id -un)" 2>/dev/null || true
    SLURM_CONF="$CONF" timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
fi
stop_pidfile slurmd "$DIR/run/slurmd.pid"
stop_pidfile slurmctld "$DIR/run/slurmctld.pid"
stop_pidfile munged "$DIR/run/munged.pid"

if [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" = "$CONF" ]; then
    rm -f "$SYSTEM_CONF"
fi
case "$DIR" in
    ""|/) echo "slurm-down: refusing to remove '$DIR'" >&2; exit 1 ;;
esac
rm -rf "$DIR"
echo "slurm-down: stopped; removed $DIR"
