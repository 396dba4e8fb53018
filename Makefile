# CrowdNet: `make demo` runs the whole thing on embedded defaults; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
# Seconds a simulated crowd labels the demo data after start-up, filling the dashboards (0: none).
DEMO_CROWD ?= 90
MANAGE := $(BIN)/python manage.py

.PHONY: venv demo test lint format bench-ingest bench-consensus clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) load_demo
	@echo ""
	@echo "CrowdNet is starting at http://127.0.0.1:$(PORT)/  (API docs: /api/docs/, admin: /admin/)"
	@echo "Logins are listed above (also in var/demo-logins.txt). Ctrl-C stops web, worker and beat."
	@if [ "$(DEMO_CROWD)" != "0" ]; then echo "A simulated crowd labels for $(DEMO_CROWD) s (DEMO_CROWD=0 skips it); its report goes to var/demo-crowd.txt."; fi
	@$(MANAGE) demo_serve --port $(PORT) --crowd $(DEMO_CROWD)

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-ingest: venv
	$(BIN)/python bench/ingest.py

bench-consensus: venv
	$(BIN)/python bench/consensus_aggregators.py
	$(BIN)/python bench/consensus_adaptive.py
	$(BIN)/python bench/consensus_live.py
	$(BIN)/python bench/consensus_boxes.py

.PHONY: bench-train
bench-train: venv
	$(BIN)/python bench/train_transfer.py
	$(BIN)/python bench/train_speed.py
	@if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  $(BIN)/python bench/train_gpu.py; \
	else echo "no CUDA GPU here: bench/train_gpu.py skipped (docs/benchmarks.md: Training)"; fi

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
