"""The data folder as people share it: several processes at once, a read-only mount, a full disk, damaged caches.

Concurrency is tested with real processes, the read-only folder with a read-only bind mount and the full disk with
a small tmpfs (both need root, as CI has); where mounting is not allowed, a non-root user's read-only folder and a
file-size limit (RLIMIT_FSIZE) stand in for them.
"""
import contextlib
import errno
import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import zlib
from glob import glob

import numpy as np
import pytest
from PIL import Image

import helper
import facegen.data
from facegen.data import cache, files
from conftest import ROOT, jpeg_bytes, mnist_archives, sha256, use_mnist_mirrors, write_pngs

CHILD_ENV = dict(os.environ, PYTHONPATH=ROOT)


def run_children(code, args_list, env=None, **options):
    """Start one `python -c code` per argument list at once; return their CompletedProcess-like results."""
    processes = [subprocess.Popen([sys.executable, '-c', code, *map(str, args)], env=env or CHILD_ENV,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)
                 for args in args_list]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def leftovers(folder):
    return [path for path in glob(os.path.join(folder, '**', '*'), recursive=True) + glob(os.path.join(folder, '.*'))
            if os.path.basename(path).startswith('.tmp-') or path.endswith('.part')]


# ------------------------------------------------------------------------------------------- several processes

DOWNLOAD_CHILD = """
import json, sys, helper
import facegen.data
spec = json.loads(sys.argv[1])
facegen.data.DATASETS['mnist'] = facegen.data.DatasetInfo(
    folder='mnist', image_mode='L', n_images=spec['n'], image_size=(28, 28), crop_size=None,
    files=tuple(facegen.data.RemoteFile(*f) for f in spec['files']), max_extracted_bytes=16 + spec['n'] * 784,
    sample_note='test')
print('RESULT', helper.download_extract('mnist', spec['data'], source='full'))
"""


def test_processes_downloading_at_once_share_one_download(server, tmp_path):
    images, labels = mnist_archives(n=6)
    spec = {'n': 6, 'data': str(tmp_path), 'files': [
        ['train-images-idx3-ubyte.gz', sha256(images), len(images), [server.route('/i.gz', images, delay_s=1.0)]],
        ['train-labels-idx1-ubyte.gz', sha256(labels), len(labels), [server.route('/l.gz', labels)]]]}

    results = run_children(DOWNLOAD_CHILD, [[json.dumps(spec)]] * 3)

    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-2000:] for r in results]
    outputs = [r.stdout for r in results]
    assert all('RESULT full' in out for out in outputs)
    assert sum('Downloaded mnist Data' in out for out in outputs) == 1, outputs
    assert sum('Found mnist Data' in out for out in outputs) == 2, 'the others wait, then find the data'
    assert server.hits.count('/i.gz') == 1
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6
    assert leftovers(str(tmp_path)) == [] and not glob(str(tmp_path / '*.gz'))


def test_a_lock_is_free_for_other_processes_as_soon_as_its_block_ends(tmp_path):
    def taken_elsewhere():
        code = 'import sys, filelock\ntry:\n    filelock.FileLock(sys.argv[1]).acquire(timeout=0)\nexcept filelock.Timeout:\n' \
               '    sys.exit(1)'
        return subprocess.run([sys.executable, '-c', code, str(tmp_path / 'x.lock')]).returncode == 0

    lock = files.locked(str(tmp_path / 'x.lock'), 'testing')
    with lock:
        assert not taken_elsewhere()
    assert taken_elsewhere(), 'released when the block ends, not when the lock object is collected'


def test_complete_data_is_read_without_waiting_for_the_lock(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/i.gz', images)], [server.route('/l.gz', labels)])
    helper.download_extract('mnist', str(tmp_path))
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time, filelock\n'
                               'filelock.FileLock(sys.argv[1]).acquire(); print("held", flush=True); time.sleep(60)',
                               str(tmp_path / '.mnist.lock')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert helper.download_extract('mnist', str(tmp_path)) == 'full'
    finally:
        holder.kill()
        holder.wait()
    assert 'Waiting' not in capsys.readouterr().out


CACHE_CHILD = """
import sys, time, zlib, numpy as np, helper
from facegen.data import cache
real = cache._decode_chunk
cache._decode_chunk = lambda *job: (time.sleep(0.05), real(*job))[1]  # a slow disk: the builds overlap
files = sorted(sys.argv[1:])
images = helper.Dataset('celeba', files).images
print('CRC', zlib.crc32(np.ascontiguousarray(images)), images.shape)
"""


def celeba_pictures(folder, n, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f'{i:06d}.jpg'
        path.write_bytes(jpeg_bytes(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)))
        paths.append(str(path))
    return paths


def test_processes_building_one_cache_at_once_all_read_it_whole(tmp_path, own_cache_folder):
    paths = celeba_pictures(tmp_path / 'img_align_celeba', 600)
    expected = helper.get_batch(paths, 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE).astype(np.uint8)

    results = run_children(CACHE_CHILD, [paths] * 3)

    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-2000:] for r in results]
    crcs = {line for r in results for line in r.stdout.splitlines() if line.startswith('CRC')}
    assert crcs == {f'CRC {zlib.crc32(expected)} (600, 28, 28, 3)'}, 'every process reads the complete images'
    builds = sum('Caching preprocessed images' in r.stdout for r in results)
    assert builds == 1, 'one process builds, the others wait for it and read its cache'
    assert leftovers(str(own_cache_folder)) == []


# ------------------------------------------------------------------------------------------- a read-only folder

@contextlib.contextmanager
def read_only(folder):
    """Make folder read-only for real: a read-only bind mount (root), else a non-root user's chmod."""
    mounted = subprocess.run(['mount', '--bind', '-o', 'ro', str(folder), str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        if os.geteuid() == 0:
            pytest.fail('mounting is refused here and root ignores chmod: run this test as a non-root user')
        for path in [folder, *folder.rglob('*')]:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        if mounted:
            subprocess.run(['umount', str(folder)], check=True)
        else:
            for path in [folder, *folder.rglob('*')]:
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


READ_CHILD = """
import sys, glob, helper
print(helper.download_extract('mnist', sys.argv[1], source='sample'))
files = sorted(glob.glob(sys.argv[1] + '/mnist/*.jpg'))[:300]
print('SHAPE', helper.Dataset('mnist', files).images.shape)
"""


def test_a_read_only_data_folder_is_used_and_caches_in_the_users_folder(tmp_path):
    data = tmp_path / 'data'
    helper.download_extract('mnist', str(data), source='sample')
    user_cache = tmp_path / 'user-cache'
    env = {k: v for k, v in CHILD_ENV.items() if k != facegen.data.CACHE_ENV}
    env['XDG_CACHE_HOME'] = str(user_cache)  # where platformdirs puts the user's cache folder on Linux

    with read_only(data):
        [result] = run_children(READ_CHILD, [[data]], env=env)

    assert result.returncode == 0, result.stderr[-2000:]
    assert 'Found mnist Data' in result.stdout and 'SHAPE (300, 28, 28, 1)' in result.stdout
    [line] = [line for line in result.stdout.splitlines() if line.startswith('Caching the preprocessed images')]
    assert str(user_cache / 'face-generation') in line, 'one line says where the cache went'
    assert not (data / 'mnist' / '.cache').exists()
    assert len(glob(str(user_cache / 'face-generation' / 'mnist-*' / '*.npy'))) == 1


def test_a_read_only_data_folder_s_own_cache_is_read_where_it_is(tmp_path):
    """A cache built in the folder before it became read-only (a teacher's shared data, the review's sandbox) is
    read there: nothing is decoded again, nothing written elsewhere."""
    data = tmp_path / 'data'
    helper.download_extract('mnist', str(data), source='sample')
    user_cache = tmp_path / 'user-cache'
    env = {k: v for k, v in CHILD_ENV.items() if k != facegen.data.CACHE_ENV}
    env['XDG_CACHE_HOME'] = str(user_cache)
    [built] = run_children(READ_CHILD, [[data]], env=env)  # writable: the cache goes into data/mnist/.cache
    assert built.returncode == 0 and glob(str(data / 'mnist' / '.cache' / '*.npy')), built.stderr[-2000:]

    with read_only(data):
        [result] = run_children(READ_CHILD, [[data]], env=env)

    assert result.returncode == 0, result.stderr[-2000:]
    assert 'SHAPE (300, 28, 28, 1)' in result.stdout and 'Caching' not in result.stdout
    assert not user_cache.exists()


def test_a_read_only_sample_of_the_old_order_is_used_as_it_is(tmp_path, capsys):
    from test_sample import old_order_sample
    data = tmp_path / 'data'
    folder = old_order_sample(str(data))
    before = {path: os.stat(path).st_mtime_ns for path in glob(os.path.join(folder, '*'))}

    with read_only(data):
        assert helper.download_extract('mnist', str(data), source='sample') == 'sample'

    assert 'Found mnist Data: offline' in capsys.readouterr().out
    assert {path: os.stat(path).st_mtime_ns for path in glob(os.path.join(folder, '*'))} == before


def test_a_read_only_2017_folder_is_used_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setitem(facegen.data.DATASETS, 'mnist', facegen.data.DatasetInfo(
        folder='mnist', image_mode='L', n_images=4, image_size=(28, 28), crop_size=None, files=(),
        max_extracted_bytes=0, sample_note=''))
    data = tmp_path / 'data'
    (data / 'mnist').mkdir(parents=True)
    for i in range(4):
        Image.new('L', (28, 28), 50 * i).save(data / 'mnist' / f'image_{i}.jpg')

    with read_only(data):
        assert helper.download_extract('mnist', str(data)) == 'full'
    assert sorted(os.listdir(data / 'mnist')) == [f'image_{i}.jpg' for i in range(4)], 'nothing written'


def test_cache_folder_names_each_data_folder_apart(tmp_path, monkeypatch):
    monkeypatch.delenv(facegen.data.CACHE_ENV)
    (tmp_path / 'a' / 'mnist').mkdir(parents=True)
    assert facegen.data.cache_folder(tmp_path / 'a' / 'mnist') == str(tmp_path / 'a' / 'mnist' / '.cache')
    mine = facegen.data.cache_folder(tmp_path / 'a' / 'mnist', cache_dir=str(tmp_path / 'c'))
    other = facegen.data.cache_folder(tmp_path / 'b' / 'mnist', cache_dir=str(tmp_path / 'c'))
    assert mine != other and os.path.dirname(mine) == os.path.dirname(other) == str(tmp_path / 'c')
    monkeypatch.setenv(facegen.data.CACHE_ENV, str(tmp_path / 'env'))
    assert facegen.data.cache_folder(tmp_path / 'a' / 'mnist').startswith(str(tmp_path / 'env'))


def test_stale_caches_of_another_data_folder_are_never_removed(tmp_path, own_cache_folder):
    first = mnist_pngs(tmp_path / 'a' / 'mnist', 4)
    second = mnist_pngs(tmp_path / 'b' / 'mnist', 4)
    helper.Dataset('mnist', first).images
    helper.Dataset('mnist', second).images
    helper.Dataset('mnist', second[:3]).images  # replaces b's cache, not a's
    caches = sorted(glob(str(own_cache_folder / '*' / '*.npy')))
    assert [os.path.basename(os.path.dirname(c)).split('-')[0] for c in caches] == ['mnist', 'mnist']
    assert helper.Dataset('mnist', first).images.shape == (4, 28, 28, 1)


def mnist_pngs(folder, n, seed=0):
    return write_pngs(folder, np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8))


# ------------------------------------------------------------------------------------------- a full disk

FULL_DISK_CHILD = """
import sys, helper
try:
    helper.Dataset('celeba', open(sys.argv[2]).read().split(), cache_dir=sys.argv[1]).images
except OSError as error:
    print('ERROR', error)
"""


@contextlib.contextmanager
def small_disk(folder, megabytes):
    """A folder with only `megabytes` of room: a tmpfs (root), else a file-size limit on the child processes.
    Yields the extra arguments for subprocess.Popen."""
    folder.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={megabytes}m', 'tmpfs', str(folder)],
                      capture_output=True).returncode == 0:
        try:
            yield {}
        finally:
            subprocess.run(['umount', str(folder)], check=True)
        return

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (megabytes << 20, megabytes << 20))
    yield {'preexec_fn': limit}


def test_full_disk_while_caching_gives_a_clear_error_and_leaves_nothing(tmp_path):
    paths = celeba_pictures(tmp_path / 'img_align_celeba', 40)
    n_images = 40 * 700  # 28,000 pictures' worth of cache, 63 MB, in 16 MB of room: repeat the 40 files
    (tmp_path / 'files.txt').write_text('\n'.join(paths * 700))
    with small_disk(tmp_path / 'small', 16) as options:
        [result] = run_children(FULL_DISK_CHILD, [[tmp_path / 'small', tmp_path / 'files.txt']], **options)
        left = os.listdir(tmp_path / 'small')
        subfolders = [name for name in left if os.path.isdir(tmp_path / 'small' / name)]
        files = [f for sub in subfolders for f in os.listdir(tmp_path / 'small' / sub)]

    assert result.returncode == 0, result.stderr[-2000:]  # no SIGBUS: a Python error the cell can show
    assert f'Not enough space in {tmp_path / "small"}' in result.stdout
    assert f'it needs {n_images * 28 * 28 * 3 / 2 ** 20:,.0f} MB' in result.stdout
    assert [f for f in files if not f.endswith('.lock')] == [], 'nothing half-built is left'


# ------------------------------------------------------------------------------------------- damaged caches

@pytest.fixture
def built_cache(tmp_path):
    """A built cache of 8 digits: (paths, cache path, the images), with this process's checked list cleared."""
    paths = mnist_pngs(tmp_path / 'mnist', 8)
    images = np.array(helper.Dataset('mnist', paths).images)
    [path] = glob(os.path.join(facegen.data.cache_folder(tmp_path / 'mnist'), '*.npy'))
    cache.CHECKED.clear()  # as a new process would find it
    return paths, path, images


@pytest.mark.parametrize('damage, reason', [
    (lambda path: os.truncate(path, os.path.getsize(path) - 100), 'mmap length'),          # cut short
    (lambda path: open(path, 'wb').write(b'not a cache at all ' * 100), 'pickled|magic'),  # overwritten
    (lambda path: flip_last_byte(path), 'checksum'),                                       # same size, other bytes
    (lambda path: os.remove(path + '.crc32'), 'crc32'),                                    # its checksum lost
])
def test_a_damaged_cache_is_rebuilt_with_one_line_saying_why(built_cache, capsys, damage, reason):
    paths, path, images = built_cache
    damage(path)

    rebuilt = helper.Dataset('mnist', paths).images

    assert np.array_equal(rebuilt, images)
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith('The image cache')]
    assert path in line and 'building it again' in line
    assert re.search(reason, line), line


def flip_last_byte(path):
    with open(path, 'r+b') as f:
        f.seek(-1, os.SEEK_END)
        byte = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_the_checksum_is_checked_once_per_process(built_cache, monkeypatch):
    paths, _, _ = built_cache
    helper.Dataset('mnist', paths).images
    monkeypatch.setattr(cache, 'crc32', lambda array: pytest.fail('checked twice'))
    assert helper.Dataset('mnist', paths).images.shape == (8, 28, 28, 1)


def test_an_unreadable_image_names_the_file_and_what_to_do(tmp_path):
    paths = celeba_pictures(tmp_path / 'img_align_celeba', 3)
    data = open(paths[1], 'rb').read()
    open(paths[1], 'wb').write(data[:len(data) // 2])  # a truncated JPEG

    with pytest.raises(OSError, match=rf'{paths[1]} cannot be read as an image \(image file is truncated.*Delete it'):
        helper.Dataset('celeba', paths).images


def test_cache_builds_use_the_cores_this_process_may_run_on(tmp_path, monkeypatch):
    workers = []
    real_pool = cache.ThreadPoolExecutor
    monkeypatch.setattr(cache.os, 'sched_getaffinity', lambda pid: {0})
    monkeypatch.setattr(cache, 'ThreadPoolExecutor', lambda n: workers.append(n) or real_pool(n))
    helper.Dataset('mnist', mnist_pngs(tmp_path / 'mnist', 3)).images
    assert workers == [1]


def test_marker_counts_are_checked_and_a_sample_is_rebuilt(tmp_path, capsys, no_network):
    helper.download_extract('mnist', str(tmp_path), source='sample')
    os.remove(tmp_path / 'mnist' / 'image_17.jpg')

    assert helper.download_extract('mnist', str(tmp_path), source='sample') == 'sample'

    assert 'holds 4,999 images, its marker says 5,000: building the sample again' in capsys.readouterr().out
    assert (tmp_path / 'mnist' / 'image_17.jpg').exists()


def test_marker_count_mismatch_without_an_archive_names_folder_and_counts(server, monkeypatch, tmp_path):
    images, labels = mnist_archives(n=6)
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/i', images)], [server.route('/l', labels)])
    helper.download_extract('mnist', str(tmp_path), source='full')
    os.remove(tmp_path / 'mnist' / 'image_3.jpg')

    with pytest.raises(OSError, match=rf"{tmp_path / 'mnist'} holds 5 images, but its marker .* says 6"):
        helper.download_extract('mnist', str(tmp_path), source='full')


def test_marker_count_mismatch_is_repaired_from_the_archive_at_hand(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives(n=6)
    use_mnist_mirrors(monkeypatch, images, labels, ['http://127.0.0.1:9/x'], ['http://127.0.0.1:9/y'])
    (tmp_path / 'train-images-idx3-ubyte.gz').write_bytes(images)
    (tmp_path / 'train-labels-idx1-ubyte.gz').write_bytes(labels)
    helper.download_extract('mnist', str(tmp_path), source='full')
    os.remove(tmp_path / 'mnist' / 'image_3.jpg')

    assert helper.download_extract('mnist', str(tmp_path), source='full') == 'full'
    assert 'extracting it again from the archives at hand' in capsys.readouterr().out
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6


def test_a_dead_extractions_staging_folder_is_removed_once_old(server, monkeypatch, tmp_path, capsys):
    old, young = tmp_path / '.tmp-mnist-dead', tmp_path / '.tmp-mnist-busy'
    for folder in (old, young):
        (folder / 'mnist').mkdir(parents=True)
        (folder / 'mnist' / 'image_0.jpg').write_bytes(b'x' * 1000)
    os.utime(old, (0, 0))

    helper.download_extract('mnist', str(tmp_path), source='sample')

    assert not old.exists() and young.exists()
    assert f'Removed {old}' in capsys.readouterr().out


def test_errno_of_a_full_disk_is_a_disk_error():
    assert files.is_disk_error(OSError(errno.EFBIG, 'File too large'))
    assert not files.is_disk_error(OSError(errno.ECONNRESET, 'reset'))

