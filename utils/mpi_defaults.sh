#!/bin/sh
# Makes fault tolerance (ULFM) and oversubscription the defaults of the
# virtual environment's own mpirun, so a plain `.venv/bin/mpirun -np N ...`
# survives a killed rank and may start more ranks than there are cores.
# Idempotent: each block is written once, behind a marker line.
set -eu
venv=${1:-.venv}
marker="# loganalyser defaults"

add_block() {
    file=$1; shift
    [ -f "$file" ] || return 0
    grep -q "^$marker" "$file" && return 0
    { echo "$marker"; for line in "$@"; do echo "$line"; done; } >> "$file"
}

add_block "$venv/etc/prte-mca-params.conf" \
    "state_base_recoverable = 1" \
    "state_base_notify_errors = 1" \
    "rmaps_default_mapping_policy = :oversubscribe"
add_block "$venv/etc/openmpi-mca-params.conf" \
    "mpi_ft_enable = 1"
