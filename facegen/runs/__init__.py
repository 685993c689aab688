"""Training runs: a folder a run, kept for good (folders), its checkpoints checked before they are trusted
(checkpoints), TensorBoard's event files (events), the TrainingRun that train keeps and shows besides training
(training), and a run read back by the notebook's cells (results).

Nothing is imported here, so that `python -m facegen.runs.folders` (make runs) starts without TensorFlow.
"""
