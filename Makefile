# lpsc-lmp: `make install` sets up everything, `make test` runs the tests.
PY ?= python3
VENV := .venv
DP := $(VENV)/dp/bin
LABEL := $(VENV)/label/bin
export OMP_NUM_THREADS ?= 1

.PHONY: install test test-all lint models default-model bench run clean-runs

install: $(VENV)/dp/.installed $(VENV)/label/.installed models

$(VENV)/dp/.installed: envs/dp.txt pyproject.toml
	$(PY) -m venv $(VENV)/dp
	$(DP)/pip install --quiet -r envs/dp.txt
	$(DP)/pip install --quiet -e ".[data,test]"
	touch $@

$(VENV)/label/.installed: envs/label.txt pyproject.toml
	$(PY) -m venv $(VENV)/label
	$(LABEL)/pip install --quiet -r envs/label.txt
	$(LABEL)/pip install --quiet -e .
	touch $@

# Derive deployable files (e.g. compressed DeePMD models) from the committed frozen models.
models: $(VENV)/dp/.installed
	$(DP)/lpsc-lmp models prepare

test: install
	$(DP)/python -m pytest -q

test-all: install
	$(DP)/python -m pytest -q -m "slow or not slow"

lint: $(VENV)/dp/.installed
	$(DP)/ruff check src tests bench scripts

# Regenerate the bundled default model dp-7net from scratch (about 40 min on 2 cores).
default-model: install
	bash scripts/default_model/make.sh

bench: install
	$(DP)/python bench/bench_md_speed.py

# The main job: an ensemble on the bundled default model.
run: install
	$(DP)/lpsc-lmp ensemble --model dp-7net --T 1000 --seeds 8 --time 10 --workers 2

clean-runs:
	rm -rf runs
