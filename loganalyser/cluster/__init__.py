"""The distributed job: message protocol, MPI transport, the master's scheduler, the roles and the rank loop."""
