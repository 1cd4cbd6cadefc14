# MotionMatch: two commands matter. `make demo` runs the main job, `make test` runs the tests.
# Both create the virtual environment first (.venv), so they work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU build that lies on this machine's disk. GPU users: make venv TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
SAMPLE_DIR ?= data/raw/sample
SEED ?= 0
BENCH_ARGS ?=

.PHONY: venv data demo test bench bench-quick bench-large reports clean help

help:
	@echo "make demo   - set up, generate sample videos, run notebooks 01-06, write reports/*.html"
	@echo "make test   - set up and run the test-suite"
	@echo "make bench  - run the benchmarks (BENCH_ARGS=--quick for the quick mode); make bench-large: 1e6 search"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,lab]"
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 --display-name "Python 3 (motionmatch)" >/dev/null
	touch $@

venv: $(VENV)/.installed

data: venv
	$(PY) -m motionmatch.cli generate-sample --out $(SAMPLE_DIR) --seed $(SEED)

demo: venv data
	$(PY) -m motionmatch.cli report --out reports --videos $(SAMPLE_DIR)

test: venv
	$(PY) -m pytest tests -p no:cacheprovider --durations=15

bench: venv
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: venv
	$(PY) -m bench --quick

# Milvus Lite at 1e6 x 1024-d (about 25 minutes and 14 GB here: too long for `make bench`)
bench-large: venv
	$(PY) -m bench.bench_search --sizes 1e6 --index-types HNSW --budget-s 3000 --queries 100 --no-probe \
		--out bench/out/search_large.json --results-md bench/RESULTS_search_large.md

clean:
	rm -rf reports/*.html reports/*.ipynb data/interim/* data/processed/* bench/out
