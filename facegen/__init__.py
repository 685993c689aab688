"""The machinery behind the Face Generation notebook, one concern a sub-package.

What a learner reads is the 2017 face beside it, installed as top-level modules: `helper` (the data and what the
notebook calls) and `problem_unittests` (the checks). The layers import downwards only:

- the notebook and the course tools (facegen.notebooks, facegen.course) use the face;
- the face uses the machinery below;
- the machinery never imports the face (tests/test_layout.py reads the imports and fails otherwise):
  - data: the datasets, downloaded and verified, or the offline sample; the image cache
  - runs: a training run's folder, session, checkpoints, TensorBoard events and what the notebook reads back
  - scores: how good the generated digits are
  - images: image grids
  - tf_settings: TensorFlow's settings, those read at its import and train's session

Importing the package sets TensorFlow's start-up settings (tf_settings) before anything can import TensorFlow.
`python -m facegen` lists every command (what `make help` prints).
"""
from . import tf_settings  # noqa: F401 (TensorFlow's start-up settings, before any module imports TensorFlow)
