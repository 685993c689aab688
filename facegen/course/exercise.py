"""The learner's edition: the 2017 exercise, made from the solution notebook.

The solution marks what the learner writes with nbgrader's markers, `### BEGIN SOLUTION` and `### END SOLUTION`
on lines of their own. nbgrader's own ClearSolutions would put one stub (`raise NotImplementedError()`) in every
region and loads its server stack on import; the 2017 exercise had a stub per function, which follows from the
solution itself, so a short nbformat script is the better fit. What a region becomes depends on where it stands:
- at the top of a cell, each hyperparameter it sets (a lower-case name) becomes `name = None` and everything else
  (the solution's own constants, in UPPER_CASE) goes;
- inside a function, the region becomes `# TODO: Implement Function`, or the comment written after the BEGIN
  marker (`### BEGIN SOLUTION  # TODO: Train Model`), then, where the region held the function's return, a return
  of as many `None` as the solution returns, and `pass` where the block would otherwise be empty.
Prose that explains the solution's choices sits between `<!-- BEGIN SOLUTION -->` and `<!-- END SOLUTION -->` in
the markdown cells and goes too. Every other cell is copied as it is, ids included, without outputs.

    python -m facegen regenerate-exercise           # write exercise/dlnd_face_generation.ipynb
    python -m facegen regenerate-exercise --check   # exit 1 when the committed one is not what the solution makes

The exercise imports the installed package like the solution (helper, problem_unittests, facegen), so exercise/
holds the notebook alone: no links, no copies.
"""
import argparse
import ast
import copy
import os
import re
import subprocess
import sys
import textwrap

import nbformat

from ..notebooks import CHECKOUT, SOLUTION

EXERCISE = os.path.join(CHECKOUT, 'exercise', 'dlnd_face_generation.ipynb')
BEGIN, END = '### BEGIN SOLUTION', '### END SOLUTION'
PROSE = re.compile(r'\n*<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?', re.DOTALL)
DEFAULT_STUB = '# TODO: Implement Function'


def exercise_notebook(solution, data_dir):
    """
    The exercise made from the solution notebook
    :param solution: The solution, an nbformat notebook
    :param data_dir: Where the exercise finds the data, relative to the exercise's folder
    :return: The exercise, a new nbformat notebook
    """
    exercise = copy.deepcopy(solution)
    for cell in exercise.cells:
        if cell.cell_type == 'markdown':
            cell.source = re.sub(r'\n{3,}', '\n\n', PROSE.sub('\n\n', cell.source)).strip('\n')
        elif cell.cell_type == 'code':
            cell.source, cell.outputs, cell.execution_count = _cut_solutions(cell.source).lstrip('\n'), [], None
            if 'parameters' in cell.metadata.get('tags', []):
                cell.source = re.sub(r"^data_dir = '[^']*' *", lambda found: f'data_dir = {data_dir!r}'.ljust(
                    len(found.group(0)) - 1) + ' ', cell.source, count=1, flags=re.M)
    return exercise


def _cut_solutions(source):
    """A code cell with each marked region replaced by what the learner starts from."""
    lines = source.split('\n')
    while BEGIN in source:
        begin = next(i for i, line in enumerate(lines) if line.strip().startswith(BEGIN))
        end = next(i for i in range(begin, len(lines)) if lines[i].strip() == END)
        lines[begin:end + 1] = _stub(lines, begin, end)
        source = '\n'.join(lines)
    return source


def _stub(lines, begin, end):
    """The lines that replace the region lines[begin:end + 1]."""
    indent = lines[begin][:len(lines[begin]) - len(lines[begin].lstrip())]
    solution = textwrap.dedent('\n'.join(lines[begin + 1:end]))
    if not indent:
        return [f'{name} = None' for name in _hyperparameters(solution)]
    stub = [indent + (lines[begin].strip()[len(BEGIN):].strip() or DEFAULT_STUB)]
    returned = _returned_values(solution)
    if returned:
        stub += ['', indent + 'return ' + ', '.join(['None'] * returned)]
    elif _opens_block(lines, begin, indent) and _closes_block(lines, end, indent):
        stub.append(indent + 'pass')
    return stub


def _hyperparameters(source):
    """The lower-case names a top-level region assigns (the learner's choices); UPPER_CASE ones are the solution's."""
    return [target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name) and not target.id.isupper()]


def _returned_values(source):
    """How many values the region's own return statements return (0 where it has none)."""
    counts, nodes = set(), list(ast.parse(_as_function_body(source)).body[0].body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Return):
            counts.add(len(node.value.elts) if isinstance(node.value, ast.Tuple) else 1)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            nodes.extend(ast.iter_child_nodes(node))  # a nested function's returns are not the function's
    if len(counts) > 1:
        raise ValueError(f'A solution region returns {sorted(counts)} values in different places:\n{source}')
    return counts.pop() if counts else 0


def _as_function_body(source):
    return 'def _():\n' + textwrap.indent(source, '    ')


def _opens_block(lines, begin, indent):
    previous = next((line for line in reversed(lines[:begin]) if line.strip()), '')
    return previous.rstrip().endswith(':') and len(previous) - len(previous.lstrip()) < len(indent)


def _closes_block(lines, end, indent):
    following = next((line for line in lines[end + 1:] if line.strip()), '')
    return len(following) - len(following.lstrip()) < len(indent)


def written_exercise(path=SOLUTION, data_dir='../data'):
    """The exercise as the script writes it: nbformat's text of exercise_notebook."""
    return nbformat.writes(exercise_notebook(nbformat.read(path, as_version=4), data_dir)) + '\n'


def changes_git_does_not_have(path, new_text):
    """True when writing new_text to path would lose work that git has not got (changed, or never added)."""
    if not os.path.exists(path):
        return False
    with open(path, encoding='utf-8') as f:
        if f.read() == new_text:
            return False
    status = subprocess.run(['git', 'status', '--porcelain', '--', os.path.basename(path)], cwd=os.path.dirname(path),
                            capture_output=True, text=True)
    return status.returncode != 0 or bool(status.stdout.strip())  # outside a git checkout nothing vouches for it


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true', help='exit 1 when the exercise is not what the solution makes')
    check = parser.parse_args(argv).check
    text = written_exercise()
    relative = os.path.relpath(EXERCISE, CHECKOUT)
    if check:
        with open(EXERCISE, encoding='utf-8') as f:
            current = f.read() == text
        print(f'{relative} is {"" if current else "not "}what the solution makes'
              + ('' if current else ': run `make regenerate-exercise` and commit it.'))
        return 0 if current else 1
    if changes_git_does_not_have(EXERCISE, text):
        print(f'{relative} has changes git does not have (a learner\'s work?), so it is left as it is. Commit it, '
              f'or move it elsewhere, then run `make regenerate-exercise` again.', file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(EXERCISE), exist_ok=True)
    with open(EXERCISE, 'w', encoding='utf-8') as f:
        f.write(text)
    print(f'Wrote {relative} from {os.path.relpath(SOLUTION, CHECKOUT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
