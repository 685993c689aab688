"""How good the generated images are, measured against the real ones: digits (a small classifier trained on the
real digits: its confidence, the spread over classes, a Frechet distance on its features) and faces (a face
detector's verdict, their variety and their novelty)."""
