"""The notebook seen from outside: its functions loaded without running it (loader), the whole of it run headless
(headless, make run).

CHECKOUT and SOLUTION name the project's checkout and its solution notebook, for the tools that work on them (the
tests, the benchmarks, the course tools), which run from a checkout (make installs the package editable there).
"""
import os

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOLUTION = os.path.join(CHECKOUT, 'dlnd_face_generation.ipynb')
