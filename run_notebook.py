"""Execute dlnd_face_generation.ipynb headless and keep what it shows.

Writes into the output folder: the executed notebook, an HTML copy (what the original project asked learners to
hand in), every figure as a PNG, and the kernel's own log. Parameters are injected after the cell tagged
`parameters`, the way papermill does.

    python run_notebook.py                      # the full run (what `make run` does)
    python run_notebook.py --max-steps 2        # a smoke run
"""
import argparse
import base64
import os
import sys
import time

import tf_environment  # noqa: F401 (the kernel inherits TensorFlow's settings from this process)

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from notebook_loader import NOTEBOOK

ROOT = os.path.dirname(os.path.abspath(__file__))
def inject_parameters(nb, parameters):
    """Insert a cell that sets `parameters` right after the cell tagged 'parameters'."""
    tagged = [i for i, cell in enumerate(nb.cells) if 'parameters' in cell.metadata.get('tags', [])]
    if not tagged:
        raise ValueError(f'{NOTEBOOK} has no cell tagged "parameters" to override')
    source = '# Parameters injected by run_notebook.py\n' + ''.join(
        f'{name} = {value!r}\n' for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata['tags'] = ['injected-parameters']
    nb.cells.insert(tagged[0] + 1, cell)


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
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter().from_notebook_node(nb)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(body)


class CellProgress:
    """nbclient hooks that print which cell runs and how long it took, so a long headless run is not silent."""

    def __init__(self, nb):
        code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == 'code']
        self.position = {index: n for n, index in enumerate(code, 1)}
        self.count, self.started = len(code), time.time()

    def start(self, cell, cell_index, **_):
        if cell.cell_type != 'code':
            return
        lines = [line for line in cell.source.splitlines()
                 if line.strip() and not line.startswith(('#', '"""', "DON'T"))]
        print(f'[{self.position[cell_index]:2d}/{self.count}] {lines[0][:72] if lines else ""}', end='', flush=True)
        self.started = time.time()

    def done(self, **_):
        print(f'  ({time.time() - self.started:.1f} s)', flush=True)


def run(output_dir, parameters, timeout_s):
    """Execute the notebook; return True when every cell ran."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    inject_parameters(nb, parameters)
    os.makedirs(output_dir, exist_ok=True)
    log_path = os.path.join(output_dir, 'kernel.log')
    progress = CellProgress(nb)
    # capture_fd_output=False keeps TensorFlow's C++ start-up lines out of the notebook; they go to kernel.log.
    client = NotebookClient(nb, timeout=timeout_s, kernel_name='python3',
                            extra_arguments=['--IPKernelApp.capture_fd_output=False'], coalesce_streams=True,
                            resources={'metadata': {'path': ROOT}},
                            on_cell_start=progress.start, on_cell_executed=progress.done)
    started, error = time.time(), None
    with open(log_path, 'w') as log:
        try:
            client.execute(stdout=log, stderr=log)
        except CellExecutionError as failure:
            error = failure
    executed = os.path.join(output_dir, 'dlnd_face_generation.ipynb')
    nbformat.write(nb, executed)
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
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--output', default=os.path.join(ROOT, 'output'), help='folder for the results')
    parser.add_argument('--data-dir', default=os.path.join(ROOT, 'data'), help='where the datasets live')
    parser.add_argument('--max-images', type=int, help='use only the first N images of each dataset')
    parser.add_argument('--max-steps', type=int, help='stop each training after N batches')
    parser.add_argument('--seed', type=int, help='seed of weights, noise and batch order')
    parser.add_argument('--bfloat16', action='store_true', default=None,
                        help="train in mixed bfloat16 (oneDNN's rewrite; see docs/speed.md)")
    parser.add_argument('--resume', action='store_true', default=None,
                        help='continue each training from its last checkpoint in the output folder')
    parser.add_argument('--timeout', type=int, default=3600, help='seconds one cell may run')
    args = parser.parse_args(argv)
    parameters = {'data_dir': os.path.abspath(args.data_dir), 'output_dir': os.path.abspath(args.output)}
    parameters.update({name: getattr(args, name) for name in ('max_images', 'max_steps', 'seed', 'bfloat16', 'resume')
                       if getattr(args, name) is not None})
    return 0 if run(os.path.abspath(args.output), parameters, args.timeout) else 1


if __name__ == '__main__':
    sys.exit(main())
