# make run:      set up, then execute the notebook headless into output/
# make test:     set up, then run the test suite
# make help:     every target, and the `python -m facegen ...` command that does the same without make (Windows)
# Each target below calls its command in facegen/__main__.py, which owns what it does.
PYTHON ?= python3
VENV ?= .venv
# The venv's stamp as a make target, its spaces escaped: a checkout (or a venv) under a folder with spaces works.
space := $(subst ,, )
STAMP := $(subst $(space),\$(space),$(VENV))/.installed
FACEGEN = "$(VENV)/bin/python" -m facegen
# The project's folder, for the targets that run before any setup (help, clean): its facegen package on the path.
PROJECT := $(shell dirname "$$(realpath "$(strip $(MAKEFILE_LIST))")")
# What `make notebook` opens, and extra options for it, e.g. NOTEBOOK_ARGS=--port=8889
NOTEBOOK ?= dlnd_face_generation.ipynb
NOTEBOOK_ARGS ?=
# Where the training runs are (make run's output folder), and extra options for TensorBoard, e.g. --port=6007
OUTPUT ?= output
TENSORBOARD_ARGS ?=

.PHONY: help setup run test notebook exercise regenerate-exercise review gradebook handout wheel tensorboard runs remove-run \
	torch-venv strip-outputs-on-commit quiet-kernels clean

help:
	@PYTHONPATH="$(PROJECT)" "$(PYTHON)" -m facegen help

setup: $(STAMP)

# The exact lock, then this package editable (helper, problem_unittests and facegen importable from any folder).
$(STAMP): requirements.txt pyproject.toml
	"$(PYTHON)" -m venv "$(VENV)"
	"$(VENV)/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
	"$(VENV)/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(MAKE) --no-print-directory strip-outputs-on-commit
	$(MAKE) --no-print-directory quiet-kernels
	touch "$(VENV)/.installed"

# TensorFlow 2.21 logs through absl, whose start-up lines no environment variable silences; this venv's kernels
# leave them on the kernel's own stderr (the terminal) instead of copying them into the cells as red text.
quiet-kernels:
	mkdir -p "$(VENV)/etc/ipython"
	echo 'c.IPKernelApp.capture_fd_output = False  # written by make setup (see the Makefile)' \
		> "$(VENV)/etc/ipython/ipython_kernel_config.py"

# A notebook saved from Jupyter with outputs is committed without them: nbstripout as a git filter, keeping the
# cells' ids (nothing to do outside a git checkout).
strip-outputs-on-commit:
	if git rev-parse --git-dir >/dev/null 2>&1; then \
		"$(VENV)/bin/nbstripout" --install && \
		git config filter.nbstripout.clean "\"$$(cd "$(VENV)" && pwd)/bin/python\" -m nbstripout --keep-id"; fi

run: $(STAMP)
	$(FACEGEN) run

test: $(STAMP)
	$(FACEGEN) test

notebook: $(STAMP)
	$(FACEGEN) notebook "$(NOTEBOOK)" $(NOTEBOOK_ARGS)

# The learner's edition opens like the solution; its kernel runs in exercise/, on the same data folder.
exercise: $(STAMP)
	$(FACEGEN) exercise $(NOTEBOOK_ARGS)

# The exercise is made from the solution; it refuses to overwrite changes git does not have.
regenerate-exercise: $(STAMP)
	$(FACEGEN) regenerate-exercise

# The rubric over NOTEBOOK (default: the solution) by this project's checks, the notebook's code in a sandbox;
# TRAIN=1 trains for a few minutes too (paths may hold spaces). HANDINS=folder-or-zip (an LMS's download) reviews a
# class, JOBS at a time, into output/review/NAME/ or OUT (gradebook.csv and .xlsx, feedback/, Moodle's and Canvas's
# grade files); run again on a new download, it reviews the new and changed hand-ins, and AGAIN="a learner" too.
# LIMITS overrides the hand-ins' limits, e.g. LIMITS="--memory-gb 4".
JOBS ?= 1
LIMITS ?=
review: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(FACEGEN) review $(if $(HANDINS),--handins "$(HANDINS)" --jobs $(JOBS),"$(NOTEBOOK)") \
		$(if $(and $(HANDINS),$(OUT)),--out "$(OUT)") $(if $(AGAIN),--again "$(AGAIN)") $(if $(filter 1,$(TRAIN)),--train) \
		$(LIMITS)

# The gradebook and feedback files again from OUT/results/*.json (reviews run elsewhere, a cluster's jobs).
gradebook: $(STAMP)
	$(FACEGEN) gradebook $(if $(OUT),"$(OUT)")

handout: $(STAMP)
	$(FACEGEN) handout

wheel: $(STAMP)
	$(FACEGEN) wheel

# TensorBoard on every run, side by side (one line and what to do when there is none, or its port is taken)
tensorboard: $(STAMP)
	@$(FACEGEN) tensorboard "$(OUTPUT)" $(TENSORBOARD_ARGS)

runs: $(STAMP)
	@$(FACEGEN) runs "$(OUTPUT)"

remove-run: $(STAMP)
	@$(FACEGEN) remove-run $(if $(RUN),"$(RUN)")

# A Python with torch for the benchmark's PyTorch peers (bench/train_speed.py --torch-python .venv-torch/bin/python)
torch-venv: .venv-torch/.installed
.venv-torch/.installed: bench/requirements-torch.txt
	$(PYTHON) -m venv .venv-torch
	.venv-torch/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-torch.txt
	touch $@

clean:
	@PYTHONPATH="$(PROJECT)" "$(PYTHON)" -m facegen clean
