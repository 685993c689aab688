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

import tf_environment  # noqa: E402,F401 (before anything imports TensorFlow)
import helper  # noqa: E402


@dataclass
class Route:
    """What the test server answers on one path."""
    body: bytes
    status: int = 200
    content_type: str = 'application/octet-stream'
    send_bytes: int = None  # stop after this many bytes while announcing the full length
    delay_s: float = 0.0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        route = self.server.routes.get(self.path)
        self.server.hits.append(self.path)
        if route is None:
            self.send_error(404)
            return
        time.sleep(route.delay_s)
        self.send_response(route.status)
        self.send_header('Content-Type', route.content_type)
        self.send_header('Content-Length', str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body[:route.send_bytes])

    def log_message(self, *args):
        pass


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 whose answers the test sets with `route`."""

    def __init__(self):
        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.routes, self._httpd.hits = {}, []
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def route(self, path, body=b'', **options):
        self._httpd.routes[path] = Route(body, **options)
        return f'http://127.0.0.1:{self._httpd.server_port}{path}'

    @property
    def hits(self):
        return self._httpd.hits

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server():
    local = LocalServer()
    yield local
    local.close()


def md5(data):
    return hashlib.md5(data).hexdigest()


def idx_gzip(array, magic):
    """An IDX file (big-endian header, uint8 items), gzipped, as MNIST ships."""
    header = magic.to_bytes(4, 'big') + b''.join(d.to_bytes(4, 'big') for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def mnist_archives(n=6, seed=0):
    """Tiny MNIST image and label archives with random digits."""
    rng = np.random.default_rng(seed)
    images = idx_gzip(rng.integers(0, 256, (n, 28, 28)), helper.MNIST_MAGIC_IMAGES)
    labels = idx_gzip(rng.integers(0, 10, (n,)), helper.MNIST_MAGIC_LABELS)
    return images, labels


def jpeg_bytes(array):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format='JPEG')
    return out.getvalue()


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
    """Point the 'mnist' entry of helper.DATASETS at test archives and mirrors."""
    monkeypatch.setitem(helper.DATASETS, 'mnist', helper.DatasetInfo(
        folder='mnist', image_mode='L', n_images=n, crop_size=None,
        files=(helper.RemoteFile('train-images-idx3-ubyte.gz', md5(images), len(images), tuple(image_urls)),
               helper.RemoteFile('train-labels-idx1-ubyte.gz', md5(labels), len(labels), tuple(label_urls))),
        max_extracted_bytes=16 + n * 28 * 28,
        sample_note=helper.DATASETS['mnist'].sample_note))


def use_celeba_mirrors(monkeypatch, archive, urls, n=5):
    """Point the 'celeba' entry of helper.DATASETS at a test archive and mirrors."""
    monkeypatch.setitem(helper.DATASETS, 'celeba', helper.DatasetInfo(
        folder='img_align_celeba', image_mode='RGB', n_images=n, crop_size=helper.CELEBA_FACE_SIZE,
        files=(helper.RemoteFile('img_align_celeba.zip', md5(archive), len(archive), tuple(urls),
                                 aliases=('celeba.zip',)),),
        max_extracted_bytes=2 * len(archive),
        sample_note=helper.DATASETS['celeba'].sample_note))


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a URL."""
    def refuse(*args, **kwargs):
        raise AssertionError('the network was touched')
    monkeypatch.setattr(helper.urllib.request, 'urlopen', refuse)


@pytest.fixture(autouse=True)
def default_data_source(monkeypatch):
    """Tests start from the default source whatever the caller's environment says."""
    monkeypatch.delenv(helper.DATA_SOURCE_ENV, raising=False)


@pytest.fixture(scope='session')
def nb():
    """The notebook's function cells, executed (without their check calls) into one namespace."""
    import run_notebook
    return run_notebook.notebook_functions()


def bind(function, nb):
    """A broken implementation that sees the notebook's globals, as a cell of the notebook would."""
    return type(function)(function.__code__, {**function.__globals__, **nb}, function.__name__,
                          function.__defaults__, function.__closure__)
