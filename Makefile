# make run:  set up, then execute the notebook headless into output/
# make test: set up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: setup run test clean

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python run_notebook.py

test: $(STAMP)
	$(VENV)/bin/python -m pytest tests

clean:
	rm -rf output .pytest_cache
