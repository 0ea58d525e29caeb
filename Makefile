# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MPIRUN := $(VENV)/bin/mpirun
STAMP  := $(VENV)/.installed
NP     ?= 4
LOGS   ?= sample_logs
HOSTS  ?= 3

# Open MPI refuses to start as root unless told it is fine (CI and containers run as root).
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: install run run-cluster test bench chaos clean browser report

install: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard loganalyser/counting/native/*.[ch]) utils/mpi_defaults.sh Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m compileall -q loganalyser election utils  # every rank starts faster, even with PYTHONDONTWRITEBYTECODE set
	sh utils/mpi_defaults.sh $(VENV)
	touch $(STAMP)

run: install
	@$(PY) -c 'from utils.jobcontrol import clear_stale_sessions; clear_stale_sessions()'
	$(MPIRUN) -np $(NP) $(PY) distributed_log_analyser.py $(LOGS)

# The same job over HOSTS simulated hosts (network namespaces, root only), 2 ranks each, under the
# supervisor (utils/supervise.py), each host with its own checkpoint folder; the cluster and the
# folders are removed afterwards, also when the job fails or is interrupted.
run-cluster: install
	@$(PY) -c 'from utils.jobcontrol import clear_stale_sessions; clear_stale_sessions()'
	@prefix=lac$$$$; ckpt=/tmp/$$prefix-checkpoints; \
	trap "$(PY) -m utils.testcluster down --prefix $$prefix; rm -rf $$ckpt" EXIT; trap 'exit 130' INT TERM; \
	$(PY) -m utils.testcluster up $(HOSTS) --prefix $$prefix && \
	$(PY) -m utils.testcluster exec --prefix $$prefix -- $(PY) -m utils.supervise \
	  --hostfile /tmp/testcluster-$$prefix/hostfile --state-dir /tmp/testcluster-$$prefix/supervise -- \
	  --bind-to none -np $$(($(HOSTS) * 2)) $(PY) distributed_log_analyser.py $(LOGS) --checkpoint-dir "$$ckpt/{host}"

test: install
	$(PY) -m pytest -q

# Debian's Chromium for the browser tests (they skip, saying so, without it). Needs root and apt.
browser:
	@command -v chromium >/dev/null || (export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
	  || echo "chromium could not be installed: the browser tests will be skipped"

bench: install
	$(PY) -m utils.benchmark
	$(PY) -m utils.recovery_bench
	$(PY) -m utils.format_bench
	$(PY) -m utils.analysis_bench
	$(PY) -m utils.follow_bench
	$(PY) -m utils.follow_bench --distributed 3
	$(PY) -m utils.watch_bench
	$(PY) -m utils.phase_bench
	$(PY) -m utils.straggler_bench

# Seed 004's Stage 2 scenarios run for real: reports/report_stage2.txt and a timeline PNG per scenario.
report: install
	$(PY) -m utils.stage2_report

chaos: install
	$(PY) -m utils.chaos --runs $(or $(RUNS),50)
	HOSTS_BIG=1GB $(PY) -m pytest -q -s tests/test_hosts.py -k big_corpus  # 3 hosts x 2 ranks on 1 GB (root only)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
