# make run:      set up, then execute the notebook headless into output/
# make test:     set up, then run the test suite
# make notebook: set up, then open the notebook in Jupyter Notebook
# make exercise: set up, then open the learner's edition (exercise/) in Jupyter Notebook
# make review NOTEBOOK=path [TRAIN=1]: the course's rubric over a notebook handed in
# make handout:  the exercise as a teacher hands it out, dist/face-generation-exercise/ and its .zip
# make tensorboard: every training run under output/ in TensorBoard; make runs / make remove-run RUN=...
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed
# What `make notebook` opens, and extra options for it, e.g. NOTEBOOK_ARGS=--port=8889
NOTEBOOK ?= dlnd_face_generation.ipynb
NOTEBOOK_ARGS ?=
EXERCISE := exercise/dlnd_face_generation.ipynb
# Where the training runs are (make run's output folder), and extra options for TensorBoard, e.g. --port=6007
OUTPUT ?= output
TENSORBOARD_ARGS ?=

.PHONY: setup run test notebook exercise regenerate-exercise review handout tensorboard runs remove-run torch-venv strip-outputs-on-commit quiet-kernels clean

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(MAKE) --no-print-directory strip-outputs-on-commit
	$(MAKE) --no-print-directory quiet-kernels
	touch $(STAMP)

# TensorFlow 2.21 logs through absl, whose start-up lines no environment variable silences; this venv's kernels
# leave them on the kernel's own stderr (the terminal) instead of copying them into the cells as red text.
quiet-kernels:
	mkdir -p $(VENV)/etc/ipython
	echo 'c.IPKernelApp.capture_fd_output = False  # written by make setup (see the Makefile)' \
		> $(VENV)/etc/ipython/ipython_kernel_config.py

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

# The kernel inherits TF_CPP_MIN_LOG_LEVEL, which keeps most of TensorFlow's C++ lines out of this terminal (not
# absl's few start-up lines: see quiet-kernels). No browser is opened where there is no display; Jupyter prints
# the address to open instead.
notebook: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(VENV)/bin/jupyter notebook $(NOTEBOOK) \
		$(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root) $(NOTEBOOK_ARGS)

# The learner's edition opens like the solution; its kernel runs in exercise/, on the same data folder.
exercise: $(STAMP)
	$(MAKE) --no-print-directory notebook NOTEBOOK=$(EXERCISE)

# The exercise is made from the solution (course/exercise.py); it refuses to overwrite changes git does not have.
regenerate-exercise: $(STAMP)
	$(VENV)/bin/python -m course.exercise

# The rubric over NOTEBOOK (default: the solution) by this project's checks; TRAIN=1 trains for a few minutes too.
review: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(VENV)/bin/python -m course.review $(NOTEBOOK) $(if $(filter 1,$(TRAIN)),--train)

handout: $(STAMP)
	$(VENV)/bin/python -m course.handout

# TensorBoard on every run, side by side (one line and what to do when there is none, or its port is taken)
tensorboard: $(STAMP)
	@$(VENV)/bin/python -m run_events $(OUTPUT) $(TENSORBOARD_ARGS)

runs: $(STAMP)
	@$(VENV)/bin/python -m run_folders list $(OUTPUT)

remove-run: $(STAMP)
	@$(VENV)/bin/python -m run_folders remove $(RUN)

# A Python with torch for the benchmark's PyTorch peers (bench/train_speed.py --torch-python .venv-torch/bin/python)
torch-venv: .venv-torch/.installed
.venv-torch/.installed: bench/requirements-torch.txt
	$(PYTHON) -m venv .venv-torch
	.venv-torch/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-torch.txt
	touch $@

clean:
	@echo 'Removing output/ (every training run, and make run'"'"'s notebook and figures), dist/ and .pytest_cache/'
	rm -rf output dist .pytest_cache
