# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Semantic matching needs PyTorch, on the CPU. PyPI's Linux wheel also brings
# CUDA libraries (GBs): `make TORCH_INDEX='--index-url https://download.pytorch.org/whl/cpu'`
# takes the CPU-only build instead.
TORCH_INDEX ?=

.PHONY: demo test lint format clean

# The virtual environment is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The semantic extra pulls PyTorch: the CPU build, which is all it needs.
	$(BIN)/python -m pip install --quiet 'torch==2.13.*' $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e '.[dev,semantic]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/digest demo

# Two processes, one per core of the reference machine: 210 s instead of 283 s there.
# Each xdist worker has its own Redis databases and PostgreSQL databases.
TEST_PROCESSES ?= 2

test: $(STAMP)
	$(BIN)/pytest -n $(TEST_PROCESSES) --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
