"""The whole job in one process: an in-memory MPI and seeded schedules of faults."""
