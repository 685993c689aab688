"""Working in Jupyter: `make notebook` serves the notebook quietly, and a notebook saved with outputs is committed
without them."""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat

from conftest import ROOT

MAKE = ['make', '--no-print-directory', '-f', os.path.join(ROOT, 'Makefile'), f'VENV={os.path.dirname(os.path.dirname(sys.executable))}']


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def children(pid):
    """Every process started by pid, and by those, as /proc lists them."""
    found = []
    for tid in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{tid}/children') as f:
            for child in map(int, f.read().split()):
                found += [child] + children(child)
    return found


def learners_environment(folder):
    """A learner's shell for a Jupyter server: no display, none of the TensorFlow settings this test process made
    for itself, no PYTEST_CURRENT_TEST (with it, ipykernel leaves a kernel's C-level output alone), and Jupyter's
    own folders inside `folder`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('DISPLAY', 'WAYLAND_DISPLAY', 'PYTEST_CURRENT_TEST') and not k.startswith('TF_')}
    env.update(JUPYTER_CONFIG_DIR=str(folder / 'config'), JUPYTER_DATA_DIR=str(folder / 'data'),
               JUPYTER_RUNTIME_DIR=str(folder / 'runtime'))
    return env


@contextlib.contextmanager
def serving(command, cwd, env, **options):
    """A server started by command (make's recipe, in a session of its own), stopped with all it started."""
    server = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True,
                              **{'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL, **options})
    try:
        yield server
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def wait_for_json(url, tries=240):
    """The JSON a starting server answers at url, polled every half second."""
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f'the server never answered {url}')


def test_make_notebook_serves_the_notebook_without_a_browser_and_without_tensorflows_noise(tmp_path):
    port, token = free_port(), 'test-token'
    with serving(MAKE + ['notebook', f'NOTEBOOK_ARGS=--port={port} --IdentityProvider.token={token}'], ROOT,
                 learners_environment(tmp_path)) as server:
        contents = wait_for_json(
            f'http://127.0.0.1:{port}/api/contents/dlnd_face_generation.ipynb?content=0&token={token}')
        assert contents['type'] == 'notebook'
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/api?token={token}') as response:
            assert json.load(response)['version'].split('.')[0] == '2'  # jupyter_server 2: Notebook 7's server
        [cmdline, jupyter] = next((argv, pid) for pid in children(server.pid)  # the server, below make's shell
                                  for argv in [open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')]
                                  if argv[1:3] == [b'-m', b'notebook'] and b'dlnd_face_generation.ipynb' in argv)
        environ = open(f'/proc/{jupyter}/environ', 'rb').read().split(b'\0')
        assert b'--no-browser' in cmdline, 'no display: no browser is tried'
        assert b'TF_CPP_MIN_LOG_LEVEL=2' in environ, "kernels inherit it: TensorFlow's C++ lines stay out"


def test_a_notebook_saved_with_outputs_is_committed_without_them(tmp_path):
    subprocess.run(['git', 'init', '-q', str(tmp_path)], check=True)
    nb = nbformat.read(os.path.join(ROOT, 'dlnd_face_generation.ipynb'), as_version=4)
    code = next(cell for cell in nb.cells if cell.cell_type == 'code')
    code.execution_count = 1
    code.outputs = [nbformat.v4.new_output('stream', name='stdout', text='Tests Passed\n')]
    nbformat.write(nb, tmp_path / 'dlnd_face_generation.ipynb')

    subprocess.run(MAKE + ['strip-outputs-on-commit'], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(['git', 'add', 'dlnd_face_generation.ipynb'], cwd=tmp_path, check=True)

    staged = nbformat.reads(subprocess.run(['git', 'show', ':dlnd_face_generation.ipynb'], cwd=tmp_path, check=True,
                                           capture_output=True, text=True).stdout, as_version=4)
    assert [cell.outputs for cell in staged.cells if cell.cell_type == 'code' and cell.outputs] == []
    assert [cell.id for cell in staged.cells] == [cell.id for cell in nb.cells], 'cell ids are kept'
    saved = nbformat.read(tmp_path / 'dlnd_face_generation.ipynb', as_version=4)
    assert next(c for c in saved.cells if c.cell_type == 'code').outputs, "the learner's own file keeps its outputs"
    shutil.rmtree(tmp_path / '.git')
