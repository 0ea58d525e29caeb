"""The parts of `utils/benchmark.py` (`make bench`), one job each.

    common    where the repository is, the MB unit, BenchError and the progress log
    corpora   the generated corpora A, B and C: built or reused, sliced, read into the page cache
    runners   running one command (plain or under mpirun), the Bench that keeps every timing
              and checks every count, the --rank-rss-child rank, the in-process kernel pass
    machine   what the machine and its tools are
    stages    what is measured on each corpus, in which order
    figures   the Stage 1 and Stage 2 figures derived from the raw runs
    reports   the two text reports, their observations and speedup.png

`utils/benchmark.py` parses the command line and calls these in turn; it is also
the program the --rank-rss-child ranks run. The modules import only the
standard library at load time (numpy, matplotlib, mpi4py and the analyser are
imported where they are used), so a rank's start-up is not slowed by them.
"""
