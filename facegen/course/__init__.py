"""The course around the notebook: the learner's edition made from the solution, its hand-out, and the review."""
