# make run:      set up, then execute the notebook headless into output/
# make test:     set up, then run the test suite
# make notebook: set up, then open the notebook in Jupyter Notebook
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed
# Extra options for `make notebook`, e.g. NOTEBOOK_ARGS=--port=8889
NOTEBOOK_ARGS ?=

.PHONY: setup run test notebook strip-outputs-on-commit clean

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(MAKE) --no-print-directory strip-outputs-on-commit
	touch $(STAMP)

# A notebook saved from Jupyter with outputs is committed without them: nbstripout as a git filter, keeping the
# cells' ids (nothing to do outside a git checkout).
strip-outputs-on-commit:
	if git rev-parse --git-dir >/dev/null 2>&1; then \
		$(VENV)/bin/nbstripout --install && \
		git config filter.nbstripout.clean '"$(abspath $(VENV))/bin/python" -m nbstripout --keep-id'; fi

run: $(STAMP)
	$(VENV)/bin/python run_notebook.py

test: $(STAMP)
	$(VENV)/bin/python -m pytest tests

# The kernel inherits TF_CPP_MIN_LOG_LEVEL: TensorFlow's C++ start-up lines stay out of this terminal. No browser
# is opened where there is no display; Jupyter prints the address to open instead.
notebook: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(VENV)/bin/jupyter notebook dlnd_face_generation.ipynb \
		$(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root) $(NOTEBOOK_ARGS)

clean:
	rm -rf output .pytest_cache
