# Two commands do everything on a fresh machine:
#   make run    set up, then analyse the library in config.yaml (or a generated demo library if none)
#   make test   set up, then run the test suite
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.recengine-installed

.PHONY: run test setup lint clean

$(STAMP): pyproject.toml scripts/setup
	bash scripts/setup $(VENV)
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/recengine --config config.yaml scan --demo-if-missing

test: $(STAMP)
	$(BIN)/ruff check recengine tests bench plugins
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check recengine tests bench plugins

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
