#!/bin/sh
# Makes the virtual environment's own mpirun fit this project by default:
# - fault tolerance (ULFM): a killed rank is an error the survivors handle;
# - oversubscription: more ranks than cores may start;
# - a rank may exit without MPI_Finalize (which can block for good once a
#   peer has died) without that ending the job;
# - the ob1 messaging layer without the libfabric (ofi) components, whose
#   probing costs about a second at every MPI start-up on a single machine
#   (shared memory and TCP are still there, so several hosts still work).
# Idempotent: the block between the markers is replaced on every run.
set -eu
venv=${1:-.venv}
begin="# loganalyser defaults begin"
end="# loganalyser defaults end"

write_block() {
    file=$1; shift
    [ -f "$file" ] || return 0
    sed -i "/^$begin\$/,/^$end\$/d" "$file"
    { echo "$begin"; for line in "$@"; do echo "$line"; done; echo "$end"; } >> "$file"
}

write_block "$venv/etc/prte-mca-params.conf" \
    "state_base_recoverable = 1" \
    "state_base_notify_errors = 1" \
    "rmaps_default_mapping_policy = :oversubscribe" \
    "prte_allowed_exit_without_sync = 1"
write_block "$venv/etc/openmpi-mca-params.conf" \
    "mpi_ft_enable = 1" \
    "pml = ob1" \
    "btl = ^ofi" \
    "mtl = ^ofi"
