"""helper.download_extract against a local HTTP server: mirrors, verification, extraction, the sample."""
import errno
import io
import json
import os
from glob import glob

import numpy as np
import pytest
from PIL import Image

import helper
from conftest import celeba_zip, md5, mnist_archives, use_celeba_mirrors, use_mnist_mirrors


def leftovers(data_path):
    """Temporary files and folders a failed call must not leave behind."""
    return glob(os.path.join(data_path, '.tmp-*')) + glob(os.path.join(data_path, '*.part'))


def serve_mnist(server, monkeypatch, images, labels):
    use_mnist_mirrors(monkeypatch, images, labels,
                      [server.route('/a/images.gz', images)], [server.route('/a/labels.gz', labels)])


def test_download_extract_mnist_writes_images_labels_and_marker(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives(n=6)
    serve_mnist(server, monkeypatch, images, labels)

    assert helper.download_extract('mnist', str(tmp_path)) == 'full'

    files = sorted(glob(str(tmp_path / 'mnist' / 'image_*.jpg')))
    assert len(files) == 6
    assert np.array(Image.open(tmp_path / 'mnist' / 'image_0.jpg')).shape == (28, 28)
    assert np.load(tmp_path / 'mnist' / 'labels.npy').shape == (6,)
    marker = json.loads((tmp_path / 'mnist' / '.complete.json').read_text())
    assert marker['source'] == 'full' and marker['images'] == 6
    assert marker['origin'] == [f'train-images-idx3-ubyte.gz (md5 {md5(images)})',
                                f'train-labels-idx1-ubyte.gz (md5 {md5(labels)})']
    assert not glob(str(tmp_path / '*.gz')), 'downloaded archives are deleted once extracted'
    assert leftovers(str(tmp_path)) == []
    assert 'Downloaded mnist Data' in capsys.readouterr().out


def test_download_extract_finds_complete_data_without_network(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)
    helper.download_extract('mnist', str(tmp_path))
    monkeypatch.setattr(helper.urllib.request, 'urlopen', lambda *a, **k: pytest.fail('network touched'))

    assert helper.download_extract('mnist', str(tmp_path)) == 'full'
    assert capsys.readouterr().out.strip().endswith('Found mnist Data')


def test_download_falls_back_after_403_timeout_and_html(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    monkeypatch.setattr(helper, 'DOWNLOAD_TIMEOUT_S', 0.5)
    urls = [server.route('/forbidden', b'no', status=403),
            server.route('/slow', images, delay_s=3),
            server.route('/html', b'<!DOCTYPE html><html>quota exceeded</html>', content_type='text/html'),
            server.route('/html-as-binary', b'  <html><body>confirm download</body></html>'),
            server.route('/good', images)]
    use_mnist_mirrors(monkeypatch, images, labels, urls, [server.route('/labels', labels)])

    assert helper.download_extract('mnist', str(tmp_path)) == 'full'

    out = capsys.readouterr().out
    failures = [line for line in out.splitlines() if line.startswith('Failed to download')]
    assert len(failures) == 4
    assert '403' in failures[0] and 'timed out' in failures[1]
    assert 'HTML' in failures[2] and 'HTML' in failures[3]
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6


@pytest.mark.parametrize('body_change, reason', [
    (lambda body: bytes([body[0] ^ 1]) + body[1:], 'md5'),  # same size, other bytes
    (lambda body: body[:-10], 'bytes'),                     # announced and sent short
])
def test_download_rejects_corrupt_archive(server, monkeypatch, tmp_path, body_change, reason):
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels,
                      [server.route('/bad', body_change(images))], [server.route('/labels', labels)])

    with pytest.raises(helper.DownloadError, match=reason):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert not (tmp_path / 'mnist').exists()
    assert leftovers(str(tmp_path)) == [] and not glob(str(tmp_path / '*.gz'))


def test_truncated_download_is_never_kept(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels,
                      [server.route('/cut', images, send_bytes=len(images) // 2)],
                      [server.route('/labels', labels)])

    with pytest.raises(helper.DownloadError, match='truncated|IncompleteRead'):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert leftovers(str(tmp_path)) == [] and not glob(str(tmp_path / '*.gz'))


def test_interrupted_extraction_is_repaired_by_next_call(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)
    real_write = helper._write_images

    def interrupted(images, target, description):
        real_write(images[:3], target, description)
        raise KeyboardInterrupt

    monkeypatch.setattr(helper, '_write_images', interrupted)
    with pytest.raises(KeyboardInterrupt):
        helper.download_extract('mnist', str(tmp_path))
    assert not (tmp_path / 'mnist').exists() and leftovers(str(tmp_path)) == []

    monkeypatch.setattr(helper, '_write_images', real_write)
    server.hits.clear()
    assert helper.download_extract('mnist', str(tmp_path)) == 'full'
    assert server.hits == [], 'the verified archives kept from the first call are reused'
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6


def test_folder_without_marker_is_not_taken_for_data(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)
    (tmp_path / 'mnist').mkdir()
    Image.new('L', (28, 28)).save(tmp_path / 'mnist' / 'image_0.jpg')  # a half-extracted old folder

    helper.download_extract('mnist', str(tmp_path))

    assert 'Found' not in capsys.readouterr().out
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6


def test_unknown_dataset_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown database_name 'celebA'; expected one of: celeba, mnist"):
        helper.download_extract('celebA', str(tmp_path))


def test_unknown_data_source_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(helper.DATA_SOURCE_ENV, 'offline')
    with pytest.raises(ValueError, match="Unknown data source 'offline'.*auto, full, sample"):
        helper.download_extract('mnist', str(tmp_path))


def test_zip_entry_escaping_the_folder_is_refused(server, monkeypatch, tmp_path):
    archive = celeba_zip(n=5, extra_entries=[('img_align_celeba/../../escaped.txt', b'x')])
    use_celeba_mirrors(monkeypatch, archive, [server.route('/celeba.zip', archive)])

    with pytest.raises(OSError, match='outside the extraction folder'):
        helper.download_extract('celeba', str(tmp_path / 'data'), source='full')
    assert not (tmp_path / 'escaped.txt').exists() and not (tmp_path / 'data' / 'escaped.txt').exists()
    assert not (tmp_path / 'data' / 'img_align_celeba').exists()


def test_zip_larger_than_expected_is_refused(server, monkeypatch, tmp_path):
    archive = celeba_zip(n=5, extra_entries=[('img_align_celeba/zeros.bin', bytes(10 ** 7))])
    use_celeba_mirrors(monkeypatch, archive, [server.route('/celeba.zip', archive)])

    with pytest.raises(OSError, match='more than the'):
        helper.download_extract('celeba', str(tmp_path), source='full')
    assert leftovers(str(tmp_path)) == []


def test_idx_with_wrong_magic_is_refused(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, labels, labels)  # a label file where the images belong

    with pytest.raises(OSError, match='magic number 2049, expected 2051'):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert not (tmp_path / 'mnist').exists()


def test_archive_fetched_by_hand_is_verified_used_and_kept(monkeypatch, tmp_path, no_network, capsys):
    archive = celeba_zip(n=5)
    use_celeba_mirrors(monkeypatch, archive, ['http://127.0.0.1:9/never-used.zip'])
    (tmp_path / 'celeba.zip').write_bytes(archive)

    assert helper.download_extract('celeba', str(tmp_path), source='full') == 'full'
    assert len(glob(str(tmp_path / 'img_align_celeba' / '*.jpg'))) == 5
    assert (tmp_path / 'celeba.zip').exists(), "the user's own archive is left in place"


def test_corrupt_archive_fetched_by_hand_names_the_file(monkeypatch, tmp_path, no_network):
    archive = celeba_zip(n=5)
    use_celeba_mirrors(monkeypatch, archive, ['http://127.0.0.1:9/never-used.zip'])
    (tmp_path / 'celeba.zip').write_bytes(archive[:-1] + b'!')

    with pytest.raises(OSError, match=r'celeba.zip is corrupted or incomplete \(md5 .*, expected .*\)\. Delete it'):
        helper.download_extract('celeba', str(tmp_path))


def test_sample_built_when_every_mirror_fails_then_replaced(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives(n=6)
    use_mnist_mirrors(monkeypatch, images, labels,
                      [server.route('/gone', status=404), server.route('/forbidden', status=403)],
                      [server.route('/labels', labels)])

    assert helper.download_extract('mnist', str(tmp_path)) == 'sample'
    out = capsys.readouterr().out
    assert 'offline, using a sample of 5,000 real MNIST digits' in out and 'the full set has 60,000' in out
    files = glob(str(tmp_path / 'mnist' / '*.jpg'))
    assert len(files) == 5000
    labels = helper.mnist_labels(sorted(files))
    assert labels.shape == (5000,) and set(labels) == set(range(10))
    assert helper.mnist_labels([str(tmp_path / 'mnist' / 'image_42.jpg')])[0] == \
        np.load(tmp_path / 'mnist' / 'labels.npy')[42]

    assert helper.download_extract('mnist', str(tmp_path)) == 'sample'
    assert 'Found mnist Data: offline, using a sample' in capsys.readouterr().out

    server.route('/gone', images)  # a mirror answers again
    assert helper.download_extract('mnist', str(tmp_path)) == 'full'
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6


def test_source_sample_never_touches_the_network(tmp_path, monkeypatch, no_network, capsys):
    monkeypatch.setenv(helper.DATA_SOURCE_ENV, 'sample')

    assert helper.download_extract('celeba', str(tmp_path)) == 'sample'

    out = capsys.readouterr().out
    assert 'offline, using a sample of 100 real faces (grey' in out
    files = sorted(glob(str(tmp_path / 'img_align_celeba' / '*.jpg')))
    assert len(files) == 100
    face = helper.get_image(files[0], 28, 28, 'RGB', helper.CELEBA_FACE_SIZE)
    assert face.shape == (28, 28, 3) and face.std() > 10, 'the crop lands on the face, not a flat border'


def test_source_full_without_mirrors_says_what_to_do(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/gone', status=404)], ['/unused'])

    with pytest.raises(helper.DownloadError, match='404.*\n.*put the archive in.*FACEGEN_DATA=sample'):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert not (tmp_path / 'mnist').exists()


def test_full_disk_gives_a_clear_error_and_leaves_nothing(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)

    def disk_full(*args):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(helper, '_write_images', disk_full)
    with pytest.raises(OSError, match='No space left on device.*Free some disk space'):
        helper.download_extract('mnist', str(tmp_path))
    assert leftovers(str(tmp_path)) == [] and not (tmp_path / 'mnist').exists()


def test_dlprogress_hook_counts_blocks():
    with helper.DLProgress(file=io.StringIO()) as bar:
        bar.hook(1, 100, 1000)
        bar.hook(4, 100, 1000)
    assert bar.n == 400 and bar.total == 1000


def test_md5_of_reads_in_chunks(tmp_path, monkeypatch):
    data = os.urandom(3 * 1024 + 17)
    (tmp_path / 'blob').write_bytes(data)
    monkeypatch.setattr(helper, 'CHUNK_BYTES', 1024)
    assert helper._md5_of(str(tmp_path / 'blob')) == md5(data)
