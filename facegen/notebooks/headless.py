"""Execute the notebook headless with papermill and keep what it shows (make run).

Every variable of the notebook's cell tagged `parameters` is an option (`max_steps` is --max-steps, `resume` is
--resume); papermill injects the ones given after that cell. The cells' output streams to this console while
they run. The kernel runs in the notebook's folder. Writes into the output folder: the executed notebook, an HTML
copy (what the original project asked learners to hand in), every figure as a PNG, and the kernel's own log.

    python -m facegen run                          # dlnd_face_generation.ipynb of this folder (what `make run` does)
    python -m facegen run --max-steps 2            # a smoke run
    python -m facegen run --notebook path/to/it.ipynb --help   # that notebook's parameters, with their defaults
"""
import argparse
import ast
import base64
import os
import sys
import time

import nbformat
import papermill
from jupyter_client import AsyncKernelManager
from nbconvert import HTMLExporter

from ..data.progress import FINAL_ONLY, PROGRESS_ENV

NOTEBOOK = 'dlnd_face_generation.ipynb'  # the default: the project's notebook, in the folder the command runs in
# The console and the HTML copy cannot show a Jupyter widget: the progress bar is text there.
HEADLESS = {'progress': 'text'}


def notebook_parameters(path):
    """The notebook's parameters: {name: (default value, help)}, read from its cell tagged `parameters`."""
    return {name: (ast.literal_eval(info['default']), info['help'])
            for name, info in papermill.inspect_notebook(path).items()}


def parse_arguments(argv=None):
    """The run's options: {'notebook': path, 'timeout': seconds, 'parameters': {name: value} for those given}."""
    # The notebook is read first: its parameters are the options that follow.
    where = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    where.add_argument('--notebook', default=NOTEBOOK)
    notebook = where.parse_known_args(argv)[0].notebook
    if not os.path.isfile(notebook):
        raise SystemExit(f'No notebook {os.path.abspath(notebook)}: run this in the folder of '
                         f'dlnd_face_generation.ipynb, or name it with --notebook PATH.')
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], allow_abbrev=False)
    parser.add_argument('--notebook', default=NOTEBOOK, help=f'the notebook to run (default: {NOTEBOOK} here)')
    parser.add_argument('--timeout', type=int, default=3600, help='seconds one cell may run (default: 3600)')
    cell = parser.add_argument_group("the notebook's parameters (its cell tagged `parameters`)")
    for name, (default, help_text) in notebook_parameters(notebook).items():
        flag = '--' + name.replace('_', '-')
        if isinstance(default, bool):
            cell.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                              help=help_text)
        else:
            cell.add_argument(flag, dest=name, type=_parser_like(default), default=argparse.SUPPRESS,
                              metavar=name.upper(), help=f'{help_text} (default: {HEADLESS.get(name, default)!r})')
    options = vars(parser.parse_args(argv))
    notebook, timeout = os.path.abspath(options.pop('notebook')), options.pop('timeout')
    # Folders are named from where the command runs; the kernel runs in the notebook's folder.
    return {'notebook': notebook, 'timeout': timeout,
            'parameters': {name: os.path.abspath(value) if name.endswith('_dir') else value
                           for name, value in options.items()}}


def _parser_like(default):
    """Turn an option's text into a value of the default's type (a literal where the default is None)."""
    if isinstance(default, (int, float)):
        return type(default)
    if default is None:
        return _literal
    return str


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def kernel_logging_to(log):
    """A kernel manager whose kernel writes its own process output (TensorFlow's C++ lines) into `log`, and whose
    data layer writes each progress bar's final line only (every line lands in the executed notebook)."""
    class KernelLoggingToFile(AsyncKernelManager):
        async def start_kernel(self, **kwargs):
            env = {**kwargs.pop('env', os.environ), PROGRESS_ENV: FINAL_ONLY}
            await super().start_kernel(stdout=log, stderr=log, env=env, **kwargs)
    return KernelLoggingToFile


class CellProgress:
    """nbclient hooks that name each code cell as it starts and say how long a slow one took."""

    def __init__(self, code_cells):
        self.count, self.position, self.started = code_cells, 0, time.time()

    def start(self, cell, **_):
        if cell.cell_type != 'code':
            return
        self.position += 1
        lines = [line for line in cell.source.splitlines()
                 if line.strip() and not line.startswith(('#', '"""', "DON'T"))]
        print(f'[{self.position:2d}/{self.count}] {lines[0][:72] if lines else ""}', flush=True)
        self.started = time.time()

    def done(self, cell, **_):
        seconds = time.time() - self.started
        if cell.cell_type == 'code' and seconds >= 1:
            print(f'        done in {seconds:.1f} s', flush=True)


def save_figures(nb, folder):
    """Write every PNG the notebook displayed as <folder>/cellNN_K.png; return the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for index, cell in enumerate(nb.cells):
        pngs = [out['data']['image/png'] for out in cell.get('outputs', []) if 'image/png' in out.get('data', {})]
        for k, png in enumerate(pngs):
            path = os.path.join(folder, f'cell{index:02d}_{k}.png')
            with open(path, 'wb') as f:
                f.write(base64.b64decode(png))
            paths.append(path)
    return paths


def save_html(nb, path):
    body, _ = HTMLExporter().from_notebook_node(nb)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(body)


def run(notebook=NOTEBOOK, parameters=None, timeout_s=3600):
    """
    Execute a notebook with `parameters` injected; write its results into its output_dir
    :param notebook: The notebook's path; its kernel runs in its folder
    :return: True when every cell ran
    """
    notebook = os.path.abspath(notebook)
    folder = os.path.dirname(notebook)
    known = notebook_parameters(notebook)
    unknown = sorted(set(parameters or {}) - set(known))
    if unknown:
        raise ValueError(f'Unknown notebook parameter(s) {", ".join(unknown)}: the cell tagged `parameters` in '
                         f'{notebook} sets {", ".join(known)}')
    parameters = {**HEADLESS, **(parameters or {})}
    output_dir = os.path.normpath(os.path.join(folder, parameters.get('output_dir', known['output_dir'][0])))
    os.makedirs(output_dir, exist_ok=True)
    executed, log_path = os.path.join(output_dir, 'dlnd_face_generation.ipynb'), os.path.join(output_dir, 'kernel.log')
    nb = nbformat.read(notebook, as_version=4)
    progress = CellProgress(sum(cell.cell_type == 'code' for cell in nb.cells) + 1)  # and the injected one
    started, error = time.time(), None
    with open(log_path, 'w') as log:
        try:
            # capture_fd_output=False keeps TensorFlow's C++ start-up lines out of the notebook; they go to kernel.log.
            papermill.execute_notebook(
                notebook, executed, parameters=parameters, cwd=folder, kernel_name='python3', progress_bar=False,
                stdout_file=sys.stdout, stderr_file=sys.stderr, execution_timeout=timeout_s,
                extra_arguments=['--IPKernelApp.capture_fd_output=False'], kernel_manager_class=kernel_logging_to(log),
                on_cell_start=progress.start, on_cell_executed=progress.done)
        except papermill.PapermillExecutionError as failure:
            error = failure
    nb = nbformat.read(executed, as_version=4)
    html = os.path.join(output_dir, 'dlnd_face_generation.html')
    save_html(nb, html)
    figures = save_figures(nb, os.path.join(output_dir, 'figures'))
    print(f'{"Failed" if error else "Ran"} the notebook in {time.time() - started:.0f} s. Wrote:\n'
          f'  {executed}\n  {html}\n  {len(figures)} figures in {os.path.join(output_dir, "figures")}\n'
          f'  {log_path} (the kernel\'s own messages)')
    if error:
        print(f'\n{error}', file=sys.stderr)
    return error is None


def main(argv=None):
    options = parse_arguments(argv)
    return 0 if run(options['notebook'], options['parameters'], options['timeout']) else 1


if __name__ == '__main__':
    sys.exit(main())
