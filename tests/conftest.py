"""Shared fixtures: a local HTTP server for download tests and tiny generated datasets."""
import gzip
import hashlib
import http.server
import io
import os
import sys
import threading
import time
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import facegen  # noqa: E402,F401 (TensorFlow's start-up settings, before anything imports TensorFlow)
import facegen.data  # noqa: E402
from facegen.data import download  # noqa: E402


@dataclass
class Route:
    """What the test server answers on one path."""
    body: bytes
    status: int = 200
    content_type: str = 'application/octet-stream'
    send_bytes: int = None  # stop after this many bytes while announcing the full length
    delay_s: float = 0.0
    ranges: bool = False    # answer a Range request with 206 and the bytes asked for
    drip_s: float = 0.0     # send one byte at a time, this long apart


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        route = self.server.routes.get(self.path)
        self.server.hits.append(self.path)
        if route is None:
            self.send_error(404)
            return
        time.sleep(route.delay_s)
        body, status, start = route.body, route.status, 0
        asked = self.headers.get('Range', '')
        self.server.ranges_asked.append(asked)
        if route.ranges and asked.startswith('bytes=') and asked.endswith('-'):
            start, status = int(asked[len('bytes='):-1]), 206
        self.send_response(status)
        self.send_header('Content-Type', route.content_type)
        self.send_header('Content-Length', str(len(body) - start))
        if status == 206:
            self.send_header('Content-Range', f'bytes {start}-{len(body) - 1}/{len(body)}')
        self.end_headers()
        sent = body[start:route.send_bytes]
        if route.drip_s:
            for i in range(len(sent)):
                self.wfile.write(sent[i:i + 1])
                self.wfile.flush()
                time.sleep(route.drip_s)
        else:
            self.wfile.write(sent)

    def log_message(self, *args):
        pass


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 whose answers the test sets with `route`."""

    def __init__(self):
        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.routes, self._httpd.hits, self._httpd.ranges_asked = {}, [], []
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def route(self, path, body=b'', **options):
        self._httpd.routes[path] = Route(body, **options)
        return f'http://127.0.0.1:{self._httpd.server_port}{path}'

    @property
    def hits(self):
        return self._httpd.hits

    @property
    def ranges_asked(self):
        """The Range header of every request ('' where there was none)."""
        return self._httpd.ranges_asked

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server():
    local = LocalServer()
    yield local
    local.close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def idx_gzip(array, magic):
    """An IDX file (big-endian header, uint8 items), gzipped, as MNIST ships."""
    header = magic.to_bytes(4, 'big') + b''.join(d.to_bytes(4, 'big') for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def mnist_archives(n=6, seed=0):
    """Tiny MNIST image and label archives with random digits."""
    rng = np.random.default_rng(seed)
    images = idx_gzip(rng.integers(0, 256, (n, 28, 28)), facegen.data.MNIST_MAGIC_IMAGES)
    labels = idx_gzip(rng.integers(0, 10, (n,)), facegen.data.MNIST_MAGIC_LABELS)
    return images, labels


def jpeg_bytes(array):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format='JPEG')
    return out.getvalue()


def write_pngs(folder, arrays):
    """Save arrays losslessly so pixel values can be checked exactly; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, array in enumerate(arrays):
        path = folder / f'image_{i}.png'
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


def celeba_zip(n=5, seed=0, extra_entries=()):
    """A tiny zip of 178x218 colour JPEGs under img_align_celeba/, as CelebA ships."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w') as archive:
        for i in range(n):
            archive.writestr(f'img_align_celeba/{i + 1:06d}.jpg',
                             jpeg_bytes(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)))
        for name, data in extra_entries:
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def use_mnist_mirrors(monkeypatch, images, labels, image_urls, label_urls, n=6):
    """Point the 'mnist' entry of facegen.data.DATASETS at test archives and mirrors."""
    monkeypatch.setitem(facegen.data.DATASETS, 'mnist', facegen.data.DatasetInfo(
        folder='mnist', image_mode='L', n_images=n, image_size=(28, 28), crop_size=None,
        files=(facegen.data.RemoteFile('train-images-idx3-ubyte.gz', sha256(images), len(images), tuple(image_urls)),
               facegen.data.RemoteFile('train-labels-idx1-ubyte.gz', sha256(labels), len(labels), tuple(label_urls))),
        max_extracted_bytes=16 + n * 28 * 28,
        sample_note=facegen.data.DATASETS['mnist'].sample_note))


def use_celeba_mirrors(monkeypatch, archive, urls, n=5):
    """Point the 'celeba' entry of facegen.data.DATASETS at a test archive and mirrors."""
    monkeypatch.setitem(facegen.data.DATASETS, 'celeba', facegen.data.DatasetInfo(
        folder='img_align_celeba', image_mode='RGB', n_images=n, image_size=facegen.data.CELEBA_PICTURE_SIZE,
        crop_size=facegen.data.CELEBA_FACE_SIZE,
        files=(facegen.data.RemoteFile('img_align_celeba.zip', sha256(archive), len(archive), tuple(urls),
                                       aliases=('celeba.zip',)),),
        max_extracted_bytes=2 * len(archive),
        sample_note=facegen.data.DATASETS['celeba'].sample_note))


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a URL."""
    def refuse(*args, **kwargs):
        raise AssertionError('the network was touched')
    monkeypatch.setattr(download.urllib.request, 'urlopen', refuse)


@pytest.fixture(autouse=True)
def default_data_source(monkeypatch):
    """Tests start from the default source and public mirrors whatever the caller's environment says."""
    monkeypatch.delenv(facegen.data.DATA_SOURCE_ENV, raising=False)
    monkeypatch.delenv(facegen.data.MIRROR_ENV, raising=False)


@pytest.fixture(autouse=True)
def own_cache_folder(monkeypatch, tmp_path_factory):
    """Image caches go to a temporary folder of the test's, never to the user's cache folder."""
    folder = tmp_path_factory.mktemp('cache')
    monkeypatch.setenv(facegen.data.CACHE_ENV, str(folder))
    return folder


@pytest.fixture(scope='session')
def nb():
    """The notebook's function cells, executed (without their check calls) into one namespace."""
    from facegen.notebooks import loader
    return loader.notebook_functions()


@pytest.fixture(scope='session')
def exercise_nb():
    """The learner's edition's function cells (the 2017 stubs), executed into one namespace."""
    from facegen.notebooks import loader
    from facegen.course import exercise
    return loader.notebook_functions(exercise.EXERCISE)


def bind(function, nb):
    """A broken implementation that sees the notebook's globals, as a cell of the notebook would."""
    return type(function)(function.__code__, {**function.__globals__, **nb}, function.__name__,
                          function.__defaults__, function.__closure__)


def solution_without_markers():
    """The solution notebook less its exercise markers."""
    import nbformat
    from facegen.course import exercise
    nb = nbformat.read(exercise.SOLUTION, as_version=4)
    for cell in nb.cells:
        cell.source = '\n'.join(line for line in cell.source.split('\n') if 'SOLUTION' not in line)
    return nb


def filled_in_exercise(nb):
    """An exercise notebook with the solution's bodies and hyperparameters pasted back into its cells."""
    solved = {cell.id: cell.source for cell in solution_without_markers().cells}
    for cell in nb.cells:
        if cell.cell_type == 'code' and ('TODO' in cell.source or 'batch_size = None' in cell.source):
            cell.source = solved[cell.id]
    return nb
