"""Benchmark of helper's data path against the original's, side by side in one run.

Prints, for CelebA-shaped JPEGs (178x218, cropped to 108x108, resized to 28x28):
  1. images per second that get_batches yields from the uint8 cache, and from decoding JPEGs per batch as the
     original helper did (target: at least 50x);
  2. time to build the cache against one epoch of the original (target: at least 1.5x faster);
  3. peak memory of a full pass over a CelebA-sized cache (202,599 images) beyond the memory-mapped file
     (target: under 1 GiB);
  4. what sharing the data folder safely costs: opening a built cache (its size, header and CRC32 checked once per
     process), taking a cache's lock, and download_extract finding a complete folder (it counts the images).
Caches go to a temporary folder (FACEGEN_CACHE_DIR), so every build is a real one.
Medians of --repeats runs. The last line is one JSON object with the figures.

    python bench/data_speed.py [--images 2000] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from filelock import FileLock
from PIL import Image

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, ROOT)
import helper  # noqa: E402
import facegen.data  # noqa: E402
from facegen.data import cache  # noqa: E402
import reference_2017  # noqa: E402 (bench/ is on the path: this file runs as a script)

CELEBA_SIZE = 202599
BATCH_SIZE = 32


def write_jpegs(folder, n, seed=0):
    """Face-sized JPEGs with smooth content, so decoding costs what a photograph costs."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        small = rng.integers(0, 256, (28, 23, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((178, 218), Image.BICUBIC)
        path = os.path.join(folder, f'{i:06d}.jpg')
        image.save(path, quality=90)
        paths.append(path)
    return paths


def original_epoch(files):
    """One epoch as the original helper ran it: decode every JPEG of every batch, in one process."""
    n = 0
    for start in range(0, len(files) - BATCH_SIZE + 1, BATCH_SIZE):
        batch = np.array([reference_2017.get_image(f, 28, 28, 'RGB') for f in files[start:start + BATCH_SIZE]],
                         dtype=np.float32)
        n += len(batch / facegen.data.IMAGE_MAX_VALUE - 0.5)
    return n


def cached_epoch(dataset):
    return sum(len(batch) for batch in dataset.get_batches(BATCH_SIZE))


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def cache_build(files):
    """Build the cache from scratch (the old one removed first)."""
    cache_dir = facegen.data.cache_folder(os.path.dirname(files[0]))
    for name in os.listdir(cache_dir) if os.path.isdir(cache_dir) else []:
        os.remove(os.path.join(cache_dir, name))
    return helper.load_image_cache(files, 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE)


def safety_costs(files, data_folder, repeats):
    """Median seconds of: the first open of a built cache in a process (checksum included), a later open, an
    uncontended cache lock, and download_extract finding a complete MNIST sample folder (5,000 images)."""
    first, later, lock, found = [], [], [], []
    lock_path = os.path.join(facegen.data.cache_folder(os.path.dirname(files[0])), 'bench.lock')
    helper.download_extract('mnist', data_folder, source='sample')
    for _ in range(repeats):
        cache.CHECKED.clear()  # as a new process finds it
        first.append(timed(helper.load_image_cache, files, 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE)[0])
        later.append(timed(helper.load_image_cache, files, 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE)[0])
        lock.append(timed(lambda: FileLock(lock_path).acquire().lock.release())[0])
        found.append(timed(helper.download_extract, 'mnist', data_folder, 'sample')[0])
    return [statistics.median(t) for t in (first, later, lock, found)]


def full_pass_memory(folder):
    """Peak RSS of a child that makes one pass over a CelebA-sized cache, minus the cache file's size."""
    path = os.path.join(folder, 'celeba_sized.npy')
    cache = np.lib.format.open_memmap(path, mode='w+', dtype=np.uint8, shape=(CELEBA_SIZE, 28, 28, 3))
    cache[:] = 128
    cache.flush()
    del cache
    peak = 'from measure import peak_rss_mb; print(round(peak_rss_mb() * 1024))'
    child = (
        'import sys, numpy as np; sys.path[:0] = sys.argv[2:]; import helper; from facegen.data import cache\n'
        f'dataset = helper.Dataset("celeba", ["unused.jpg"] * {CELEBA_SIZE}, seed=0)\n'
        'dataset._images = np.load(sys.argv[1], mmap_mode="r")\n'
        'print(sum(len(b) for b in dataset.get_batches(64)))\n' + peak + '\n'
        'import time; start = time.perf_counter(); cache.crc32(dataset._images)\n'
        'print(time.perf_counter() - start)'
    )
    out = subprocess.run([sys.executable, '-c', child, path, ROOT, BENCH], capture_output=True, text=True, check=True)
    n, peak_kib = map(int, out.stdout.split()[:2])
    baseline = subprocess.run([sys.executable, '-c', f'import sys; sys.path[:0] = sys.argv[1:]; import helper\n{peak}',
                               ROOT, BENCH], capture_output=True, text=True, check=True)
    file_mib = os.path.getsize(path) / 2 ** 20
    crc_s = float(out.stdout.split()[2])
    return n, peak_kib / 1024, int(baseline.stdout) / 1024, file_mib, crc_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=2000, help='JPEGs for the speed figures')
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        os.environ[facegen.data.CACHE_ENV] = os.path.join(folder, 'caches')
        files = write_jpegs(folder, args.images)
        original_s, build_s, cached_s = [], [], []
        for _ in range(args.repeats):
            original_s.append(timed(original_epoch, files)[0])
            build_s.append(timed(cache_build, files)[0])
            dataset = helper.Dataset('celeba', files, seed=0)
            dataset.images  # noqa: B018 (load the cache outside the timing)
            cached_s.append(timed(cached_epoch, dataset)[0])
        n = (len(files) // BATCH_SIZE) * BATCH_SIZE
        original_ips, cached_ips = n / statistics.median(original_s), n / statistics.median(cached_s)
        build_ratio = statistics.median(original_s) / statistics.median(build_s)
        passed, peak_mib, base_mib, file_mib, crc_s = full_pass_memory(folder)
        first_open_s, open_s, lock_s, found_s = safety_costs(files, os.path.join(folder, 'data'), args.repeats)

    beyond_mib = peak_mib - file_mib
    print(f'{len(files):,} CelebA-shaped JPEGs, batch {BATCH_SIZE}, {os.cpu_count()} cores, '
          f'median of {args.repeats} runs')
    print(f'  original get_batches (decode per batch): {original_ips:10,.0f} images/s')
    print(f'  cached get_batches:                      {cached_ips:10,.0f} images/s   {cached_ips / original_ips:6.1f}x '
          f'(target >= 50x)')
    print(f'  cache build: {statistics.median(build_s):.2f} s against {statistics.median(original_s):.2f} s for one '
          f'original epoch: {build_ratio:.2f}x faster (target >= 1.5x)')
    print(f'  full pass over a CelebA-sized cache ({passed:,} images, {file_mib:,.0f} MiB file): peak RSS '
          f'{peak_mib:,.0f} MiB, {beyond_mib:,.0f} MiB beyond the file (target < 1024; the interpreter alone: '
          f'{base_mib:,.0f} MiB)')
    print(f'  safety: first open of the cache in a process {first_open_s * 1e3:.1f} ms (checksum included; '
          f'{crc_s:.2f} s for a CelebA-sized cache), later opens {open_s * 1e3:.1f} ms, a cache lock '
          f'{lock_s * 1e3:.2f} ms, download_extract finding 5,000 images {found_s * 1e3:.1f} ms')
    print(json.dumps({'cached_vs_original_batches': round(cached_ips / original_ips, 1),
                      'cache_build_vs_original_epoch': round(build_ratio, 2),
                      'full_pass_peak_rss_mb': round(peak_mib), 'full_pass_beyond_file_mb': round(beyond_mib),
                      'first_open_ms': round(first_open_s * 1e3, 1), 'open_ms': round(open_s * 1e3, 1),
                      'celeba_checksum_s': round(crc_s, 2), 'found_ms': round(found_s * 1e3, 1)}))


if __name__ == '__main__':
    main()
