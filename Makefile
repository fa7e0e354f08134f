# Two commands on a fresh machine (Python 3.10+ with venv):
#   make report   set up, run the agreement matrix, write gradmatrix-report/
#   make test     set up, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup report test bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

# the package's bytecode, as pip writes it for an installed package (an editable install
# does not, and PYTHONDONTWRITEBYTECODE keeps Python from caching it): each process a run
# starts (its worker, JAX's host) would otherwise compile the sources again, 0.2 s of CPU
# for the judge; only files changed since are compiled again
setup: $(BIN)/.installed
	$(BIN)/python -m compileall -q gradmatrix manual oracles reports >/dev/null

report: setup
	$(BIN)/gradmatrix run -n 2

# three workers on the machine's two cores, each with one core's worth of torch and BLAS
# threads (as gradmatrix run -n does; a value already set is kept): the tests wait on the
# processes they start (a check's worker, a command, a time limit running out) for about a
# sixth of their time, which a third worker fills (on one clone, three runs of each
# alternated: 137-148 s against 142-163 s with two). pytest rewrites the asserts of
# the tests and of every pytest plugin's package (gradmatrix, hypothesis) in each pytest
# process, 4 s of CPU here, and keeps the result only where bytecode may be written: the
# suite's own pytest runs would otherwise each pay it again
test: setup
	PYTHONDONTWRITEBYTECODE= OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} \
	MKL_NUM_THREADS=$${MKL_NUM_THREADS:-1} $(BIN)/python -m pytest -n 3 --dist loadgroup

clean:
	rm -rf $(VENV) gradmatrix-report
