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

setup: $(BIN)/.installed

report: setup
	$(BIN)/gradmatrix run -n 2

# two workers on the machine's cores: each gets one core's worth of torch and BLAS threads
# (as gradmatrix run -n does; a value already set is kept)
test: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} \
	MKL_NUM_THREADS=$${MKL_NUM_THREADS:-1} $(BIN)/python -m pytest -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) gradmatrix-report
