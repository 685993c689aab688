"""Code in a hand-in that reaches for the checks, the interpreter or the process: WARN lines for the teacher to read.

The verdict never depends on this (judge.py judges what the functions built, whatever the hand-in's process did),
but a notebook that replaces the checks, writes to descriptors, exits its process or reads files outside its
folder was written to fool a review, and its teacher should know. Each finding names the cell, the line and what
the code reaches for; the notebook's own code (the solution, the exercise) has none.
"""
import ast
import functools
import re

import nbformat

from ..notebooks import loader as notebook_loader

# import NAME: what the code reaches for with it
MODULES = {'problem_unittests': 'the checks', 'builtins': "the interpreter's built-ins", 'ctypes': "the process's "
           'memory', 'signal': "the process's signals", 'subprocess': 'other programs', 'socket': 'the network',
           'urllib': 'the network', 'http': 'the network', 'requests': 'the network', 'importlib': 'the import system',
           'gc': "the interpreter's objects", 'inspect': "the callers' frames", 'unittest': "the checks' mocks",
           'multiprocessing': 'other processes', 'shutil': 'files', 'pathlib': 'files', 'pickle': 'code in data',
           'marshal': 'code in data', 'types': 'code objects'}
# MODULE.NAME
ATTRIBUTES = {('sys', 'modules'): 'the loaded modules', ('sys', 'exit'): 'the end of the process',
              ('sys', '_getframe'): "the callers' frames", ('sys', 'settrace'): 'the interpreter',
              ('sys', 'setprofile'): 'the interpreter', ('sys', 'stdout'): "the review's output",
              ('os', '_exit'): 'the end of the process', ('os', 'kill'): 'other processes', ('os', 'fork'):
              'a new process', ('os', 'system'): 'other programs', ('os', 'popen'): 'other programs',
              ('os', 'write'): 'file descriptors', ('os', 'fdopen'): 'file descriptors', ('os', 'dup2'):
              'file descriptors', ('os', 'remove'): 'files', ('os', 'unlink'): 'files', ('os', 'rmdir'): 'files',
              ('os', 'rename'): 'files', ('os', 'replace'): 'files', ('os', 'chdir'): 'other folders',
              ('os', 'environ'): 'the environment', ('os', 'execv'): 'other programs', ('os', 'execl'):
              'other programs', ('os', 'execvp'): 'other programs', ('os', 'listdir'): 'other folders',
              ('os', 'symlink'): 'links', ('os', 'link'): 'links', ('os', 'open'): 'file descriptors',
              ('os', 'dup'): 'file descriptors', ('os', 'getenv'): 'the environment', ('io', 'FileIO'):
              'file descriptors', ('io', 'open'): 'files', ('sys', 'argv'): "the process's arguments"}
CALLS = {'exec': 'code from a string', 'eval': 'code from a string', 'compile': 'code from a string',
         '__import__': 'the import system', 'exit': 'the end of the process', 'quit': 'the end of the process',
         'globals': "the notebook's globals", 'setattr': "another object's attributes", 'delattr':
         "another object's attributes", 'vars': "another object's attributes", 'getattr':
         "another object's attributes by name"}
NAMES = {'__builtins__': "the interpreter's built-ins", '__loader__': 'the import system', '__spec__':
         'the import system'}
CHECK_CALLERS = ('test_', 'check_')  # tests.test_model_inputs(...), tests.check_hyperparameters(...)
# What the scan parses of one cell, in the teacher's process (the solution's largest cell: 3,000): a parse tree
# takes about a thousand times its source in memory.
MAX_SOURCE = 100_000
NEWLINE = re.compile(r'\r\n|\r|\n')  # Python's own line ends, so that a line number names the line Python read


def findings(nb):
    """['cell N, line L: ...'] for each place a notebook's code reaches for the checks, the interpreter, the
    process or files outside its folder; the cells the exercise hands out as they are (its first cell, which
    installs this package, say) are the project's own code. It reads whatever Python reads and never stops."""
    handed_out = _handed_out_cells()
    found = []
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != 'code' or cell.source.strip() in handed_out:
            continue
        if not scannable(cell.source):
            found.append(f'cell {number}: {len(cell.source):,} characters, more than the scan reads in a cell '
                         f'({MAX_SOURCE:,}): read it yourself')
            continue
        lines = NEWLINE.split(cell.source)
        for offset, text in enumerate(lines, 1):
            if text.lstrip().startswith('!'):
                found.append(_finding(number, offset, 'a shell command', text))
        try:
            tree = ast.parse(notebook_loader.without_magics(cell.source))
        except SyntaxError:
            continue  # the review's own line says so
        except (ValueError, RecursionError, MemoryError) as error:  # null bytes, nesting past the parser's depth
            found.append(f'cell {number}: code the scan cannot read ({type(error).__name__}): read it yourself')
            continue
        found += [_finding(number, node.lineno, what, lines[node.lineno - 1] if node.lineno <= len(lines) else '')
                  for node, what in _reaching(tree)]
    return found


def scannable(source):
    """Whether a cell is small enough for the teacher's process to parse."""
    return len(source) <= MAX_SOURCE


@functools.cache
def _handed_out_cells():
    from .exercise import EXERCISE
    return frozenset(cell.source.strip() for cell in nbformat.read(EXERCISE, as_version=4).cells
                     if cell.cell_type == 'code')


def _finding(cell, line, what, text):
    return f'cell {cell}, line {line}: {what} ({text.strip()[:80]})'


def _reaching(tree):
    """(node, what it reaches for) of a cell's tree, in the order of the source."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    aliases = _aliases(tree)
    found = [(node, _reaches_for(node, parents, aliases)) for node in ast.walk(tree)]  # walked breadth first
    return sorted([(node, what) for node, what in found if what], key=lambda pair: (pair[0].lineno,
                                                                                      pair[0].col_offset))


def _aliases(tree):
    """{name in the cell: the module it is} of its imports (`import os as o`: {'o': 'os'})."""
    return {alias.asname or alias.name.split('.')[0]: alias.name if alias.asname else alias.name.split('.')[0]
            for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def _reaches_for(node, parents, aliases):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or '']
        if isinstance(node, ast.Import) and [(a.name, a.asname) for a in node.names] == [('problem_unittests',
                                                                                          'tests')]:
            return None  # the notebook's own import of its checks
        reached = [f'imports {module}: {MODULES[module.split(".")[0]]}' for module in modules
                   if module.split('.')[0] in MODULES]
        if isinstance(node, ast.ImportFrom):  # from os import _exit as leave: the name, whatever it is called
            reached += [f'imports {node.module}.{alias.name}: {ATTRIBUTES[(node.module, alias.name)]}'
                        for alias in node.names if (node.module, alias.name) in ATTRIBUTES]
        return '; '.join(reached) or None
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        module = aliases.get(node.value.id, node.value.id)
        key = (module, node.attr)
        if key in ATTRIBUTES:
            return f'{node.value.id}.{node.attr}: {ATTRIBUTES[key]}'
        if module in ('tests', 'problem_unittests') and not _calls_a_check(node, parents):
            return f'{node.value.id}.{node.attr} other than a call of a check: the checks'
    elif isinstance(node, ast.Name) and node.id in NAMES:
        return f'{node.id}: {NAMES[node.id]}'
    elif isinstance(node, ast.Name) and aliases.get(node.id, node.id) in ('tests', 'problem_unittests') and \
            not isinstance(parents.get(node), ast.Attribute):
        return f'{node.id} used as a whole: the checks'
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in CALLS:
            return f'{node.func.id}(): {CALLS[node.func.id]}'
        if node.func.id == 'open' and not _inside_its_folder(node):
            return 'open() of a path that may lie outside its folder'
    return None


def _calls_a_check(node, parents):
    parent = parents.get(node)
    return isinstance(parent, ast.Call) and parent.func is node and node.attr.startswith(CHECK_CALLERS)


def _inside_its_folder(call):
    """Whether open()'s path is a literal relative path that stays in the folder."""
    if not call.args or not isinstance(call.args[0], ast.Constant) or not isinstance(call.args[0].value, str):
        return False
    path = call.args[0].value.replace('\\', '/')
    return not path.startswith(('/', '~')) and ':' not in path and '..' not in path.split('/')


def tf1_names(nb):
    """['the cell of discriminator uses tf.contrib.X: ...'] for each cell that uses tf.contrib names (TensorFlow 2
    removed them; the review runs a few of them as TensorFlow 1 did, recorder.tf1_contrib)."""
    found = []
    for number, cell in enumerate(nb.cells, 1):
        defined = [name for name in notebook_loader.FUNCTIONS if f'def {name}(' in cell.get('source', '')]
        if cell.cell_type == 'code' and defined and 'tf.reset_default_graph(' in cell.source:
            found.append(f'the cell of {defined[0]} calls tf.reset_default_graph(): TensorFlow 1.0 to 1.2 let it '
                         'pass inside the graph a training cell opens (it reset another graph); TensorFlow 2 refuses '
                         'it there. The review ran it as TensorFlow 1.0 did; on TensorFlow 2, remove it')
        if cell.cell_type != 'code' or 'tf.contrib' not in cell.source:
            continue
        names = sorted(set(re.findall(r'tf\.contrib(?:\.\w+)+', cell.source)))
        where = f'the cell of {defined[0]}' if defined else f'cell {number}'
        found.append(f"{where} uses {', '.join(names[:4])}: TensorFlow 2 has no tf.contrib. The review ran "
                     "what a 2017 notebook uses of it (xavier_initializer, xavier_initializer_conv2d, flatten, "
                     "l2_regularizer, keras) as TensorFlow 1 did; on TensorFlow 2 the checks name what replaces it")
    return found
