"""The notebook's model and training functions, loaded without running the notebook (for the tests and the
benchmarks): every code cell that defines one of FUNCTIONS is executed, up to its check, into one namespace."""
import ast
import re

import nbformat

from . import SOLUTION

FUNCTIONS = ('model_inputs', 'discriminator', 'generator', 'model_loss', 'model_opt', 'show_generator_output',
             'train')
CHECK_MARKER = '"""\nDON\'T MODIFY ANYTHING IN THIS CELL THAT IS BELOW THIS LINE'  # the check call follows


def without_magics(source):
    """A cell's source with IPython's % and ! lines blanked, so that it parses as Python (line numbers kept): a cell
    magic that times or captures its cell (`%%time`) leaves the Python that Jupyter runs."""
    return '\n'.join('' if line.lstrip().startswith(('%', '!')) else line for line in source.split('\n'))


def base_namespace():
    """What the notebook's cells before the functions import: tf, np, helper, the checks as tests, pyplot, display."""
    import matplotlib.pyplot
    import numpy as np
    import tensorflow.compat.v1 as tf

    import helper
    import problem_unittests
    return {'tf': tf, 'np': np, 'helper': helper, 'tests': problem_unittests, 'pyplot': matplotlib.pyplot,
            'display': lambda *args, **kwargs: None}


def notebook_functions(path=SOLUTION, transform=None):
    """
    Load the notebook's functions
    :param path: The notebook
    :param transform: A function applied to each cell's source before it runs (None: the source as it is)
    :return: dict of the notebook's globals, model_inputs to train included
    """
    nb = nbformat.read(path, as_version=4)
    namespace = base_namespace()
    for cell in nb.cells:
        if cell.cell_type == 'code' and any(f'def {name}(' in cell.source for name in FUNCTIONS):
            source = cell.source.split(CHECK_MARKER)[0]
            exec(transform(source) if transform else source, namespace)
    missing = [name for name in FUNCTIONS if name not in namespace]
    if missing:
        raise ValueError(f'{path} defines no {", ".join(missing)}')
    return namespace


def training_cell_setting(name, path=SOLUTION):
    """
    What each training cell (MNIST's, then CelebA's) sets a hyperparameter to before it trains
    :param name: The variable, e.g. 'R1_WEIGHT'
    :param path: The notebook
    :return: list of the values, None for a training cell that does not set it
    """
    nb = nbformat.read(path, as_version=4)
    training = [cell.source for cell in nb.cells if cell.cell_type == 'code' and 'train(epochs' in cell.source]
    matches = [re.search(rf'^{name} = ([^#\n]+)', source, re.MULTILINE) for source in training]
    return [ast.literal_eval(match.group(1).strip()) if match else None for match in matches]
