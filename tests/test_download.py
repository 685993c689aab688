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
import facegen.data
from facegen.data import download, extract
from conftest import celeba_zip, mnist_archives, sha256, use_celeba_mirrors, use_mnist_mirrors


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
    assert marker['origin'] == [f'train-images-idx3-ubyte.gz (sha256 {sha256(images)})',
                                f'train-labels-idx1-ubyte.gz (sha256 {sha256(labels)})']
    assert not glob(str(tmp_path / '*.gz')), 'downloaded archives are deleted once extracted'
    assert leftovers(str(tmp_path)) == []
    assert 'Downloaded mnist Data' in capsys.readouterr().out


def test_download_extract_finds_complete_data_without_network(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)
    helper.download_extract('mnist', str(tmp_path))
    monkeypatch.setattr(download.urllib.request, 'urlopen', lambda *a, **k: pytest.fail('network touched'))

    assert helper.download_extract('mnist', str(tmp_path)) == 'full'
    assert capsys.readouterr().out.strip().endswith('Found mnist Data')


def test_download_falls_back_after_403_timeout_and_html(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    monkeypatch.setattr(download, 'DOWNLOAD_TIMEOUT_S', 0.5)
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
    (lambda body: bytes([body[0] ^ 1]) + body[1:], 'sha256'),  # same size, other bytes
    (lambda body: body[:-10], 'bytes'),                     # announced and sent short
])
def test_download_rejects_corrupt_archive(server, monkeypatch, tmp_path, body_change, reason):
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels,
                      [server.route('/bad', body_change(images))], [server.route('/labels', labels)])

    with pytest.raises(facegen.data.DownloadError, match=reason):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert not (tmp_path / 'mnist').exists()
    assert leftovers(str(tmp_path)) == [] and not glob(str(tmp_path / '*.gz'))


def test_truncated_download_is_kept_to_resume_but_never_taken_for_data(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels,
                      [server.route('/cut', images, send_bytes=len(images) // 2)],
                      [server.route('/labels', labels)])

    with pytest.raises(facegen.data.DownloadError, match='truncated|IncompleteRead'):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert not glob(str(tmp_path / '*.gz')) and not (tmp_path / 'mnist').exists()
    part = tmp_path / 'train-images-idx3-ubyte.gz.part'
    assert part.read_bytes() == images[:len(images) // 2], 'one .part per archive, holding what arrived'


def test_interrupted_extraction_is_repaired_by_next_call(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)
    real_write = extract.write_images

    def interrupted(images, target, description):
        real_write(images[:3], target, description)
        raise KeyboardInterrupt

    monkeypatch.setattr(extract, 'write_images', interrupted)
    with pytest.raises(KeyboardInterrupt):
        helper.download_extract('mnist', str(tmp_path))
    assert not (tmp_path / 'mnist').exists() and leftovers(str(tmp_path)) == []

    monkeypatch.setattr(extract, 'write_images', real_write)
    server.hits.clear()
    assert helper.download_extract('mnist', str(tmp_path)) == 'full'
    assert server.hits == [], 'the verified archives kept from the first call are reused'
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6


def test_folder_without_marker_is_set_aside_never_deleted(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)
    (tmp_path / 'mnist').mkdir()
    Image.new('L', (28, 28)).save(tmp_path / 'mnist' / 'image_0.jpg')  # a half-copied old folder
    (tmp_path / 'mnist' / 'my_notes.txt').write_text('mine')

    helper.download_extract('mnist', str(tmp_path))

    out = capsys.readouterr().out
    [aside] = glob(str(tmp_path / 'mnist.set-aside-*'))
    assert f'moved it to {aside}' in out and '1 images, expected 6' in out and 'Found' not in out
    assert sorted(os.listdir(aside)) == ['image_0.jpg', 'my_notes.txt'], 'nothing of the old folder is lost'
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 6


def test_unknown_dataset_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown database_name 'celebA'; expected one of: celeba, mnist"):
        helper.download_extract('celebA', str(tmp_path))


def test_unknown_data_source_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(facegen.data.DATA_SOURCE_ENV, 'offline')
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

    with pytest.raises(OSError, match=r'celeba.zip is corrupted or incomplete \(sha256 .*, expected .*\)\. Delete it'):
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
    monkeypatch.setenv(facegen.data.DATA_SOURCE_ENV, 'sample')

    assert helper.download_extract('celeba', str(tmp_path)) == 'sample'

    out = capsys.readouterr().out
    assert 'offline, using a sample of 100 real faces (grey' in out
    files = sorted(glob(str(tmp_path / 'img_align_celeba' / '*.jpg')))
    assert len(files) == 100
    face = helper.get_image(files[0], 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE)
    assert face.shape == (28, 28, 3) and face.std() > 10, 'the crop lands on the face, not a flat border'


def test_source_full_without_mirrors_says_what_to_do(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/gone', status=404)], ['/unused'])

    with pytest.raises(facegen.data.DownloadError, match='404.*\n.*put the archive in.*FACEGEN_DATA=sample'):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert not (tmp_path / 'mnist').exists()


def test_full_disk_gives_a_clear_error_and_leaves_nothing(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    serve_mnist(server, monkeypatch, images, labels)

    def disk_full(*args):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(extract, 'write_images', disk_full)
    with pytest.raises(OSError, match='No space left on device.*Free some disk space'):
        helper.download_extract('mnist', str(tmp_path))
    assert leftovers(str(tmp_path)) == [] and not (tmp_path / 'mnist').exists()


def test_dlprogress_hook_counts_blocks():
    with helper.DLProgress(file=io.StringIO()) as bar:
        bar.hook(1, 100, 1000)
        bar.hook(4, 100, 1000)
    assert bar.n == 400 and bar.total == 1000


class reading:
    """A file whose reads record the sizes asked for."""

    def __init__(self, file, reads):
        self.file, self.reads = file, reads

    def read(self, size):
        self.reads.append(size)
        return self.file.read(size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_sha256_of_reads_in_chunks(tmp_path, monkeypatch):
    data = os.urandom(3 * 1024 + 17)
    (tmp_path / 'blob').write_bytes(data)
    monkeypatch.setattr(download, 'CHUNK_BYTES', 1024)
    reads = []
    monkeypatch.setattr(download, 'open', lambda *a: reading(open(*a), reads), raising=False)
    assert download.sha256_of(str(tmp_path / 'blob')).hexdigest() == sha256(data)
    assert max(reads) == 1024, 'read in chunks of CHUNK_BYTES'
    assert download.sha256_of(str(tmp_path / 'blob'), limit=2000).hexdigest() == sha256(data[:2000])


def test_a_cut_download_resumes_where_it_stopped(server, monkeypatch, tmp_path):
    images, labels = mnist_archives(n=50)
    half = len(images) // 2
    cut = server.route('/i.gz', images, send_bytes=half)
    use_mnist_mirrors(monkeypatch, images, labels, [cut], [server.route('/l.gz', labels)], n=50)
    with pytest.raises(facegen.data.DownloadError, match='truncated'):
        helper.download_extract('mnist', str(tmp_path), source='full')

    server.route('/i.gz', images, ranges=True)  # the server is back, and serves ranges
    server.ranges_asked.clear()
    assert helper.download_extract('mnist', str(tmp_path), source='full') == 'full'

    assert server.ranges_asked[0] == f'bytes={half}-', 'only the missing bytes are asked for'
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 50 and leftovers(str(tmp_path)) == []


def test_a_server_without_ranges_starts_the_download_over(server, monkeypatch, tmp_path):
    images, labels = mnist_archives(n=50)
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/i.gz', images)], [server.route('/l.gz', labels)],
                      n=50)
    (tmp_path / 'train-images-idx3-ubyte.gz.part').write_bytes(images[:100])

    assert helper.download_extract('mnist', str(tmp_path), source='full') == 'full'
    assert len(glob(str(tmp_path / 'mnist' / '*.jpg'))) == 50


def test_a_resumed_download_of_other_bytes_fails_its_checksum_and_is_dropped(server, monkeypatch, tmp_path):
    images, labels = mnist_archives(n=50)
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/i.gz', images, ranges=True)],
                      [server.route('/l.gz', labels)], n=50)
    (tmp_path / 'train-images-idx3-ubyte.gz.part').write_bytes(b'\0' * 100)  # not the archive's first bytes

    with pytest.raises(facegen.data.DownloadError, match=f'corrupted: sha256 .*, expected {sha256(images)}'):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert leftovers(str(tmp_path)) == [], 'a .part of the wrong bytes is never resumed again'


def test_a_dripping_server_is_left_at_the_deadline(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives()
    monkeypatch.setattr(download, 'DOWNLOAD_DEADLINE_S', 1)
    monkeypatch.setattr(download, 'DOWNLOAD_MIN_RATE', 1e9)
    drip = server.route('/drip', images, drip_s=0.05)  # never idle for long, never done
    use_mnist_mirrors(monkeypatch, images, labels, [drip, server.route('/good', images)],
                      [server.route('/l.gz', labels)])

    assert helper.download_extract('mnist', str(tmp_path), source='full') == 'full'
    [failure] = [line for line in capsys.readouterr().out.splitlines() if line.startswith('Failed')]
    assert '/drip: too slow' in failure and facegen.data.DEADLINE_ENV in failure


def test_the_deadline_allows_100_kb_per_second_and_the_variable_lengthens_it(monkeypatch):
    assert facegen.data.download_deadline_s(1000) == facegen.data.DOWNLOAD_DEADLINE_S
    assert facegen.data.download_deadline_s(1_443_490_838) == pytest.approx(14_435, abs=1)
    monkeypatch.setenv(facegen.data.DEADLINE_ENV, '600')
    assert facegen.data.download_deadline_s(1000) == 600
    monkeypatch.setenv(facegen.data.DEADLINE_ENV, '5')
    assert facegen.data.download_deadline_s(1000) == facegen.data.DOWNLOAD_DEADLINE_S, 'it lengthens, never shortens'


def test_a_classroom_mirror_folder_is_tried_first_with_the_same_checks(monkeypatch, tmp_path, capsys):
    real_urlopen, opened = download.urllib.request.urlopen, []

    def local_files_only(request, **options):
        opened.append(request.full_url)
        assert request.full_url.startswith('file://'), 'the network was touched'
        return real_urlopen(request, **options)
    monkeypatch.setattr(download.urllib.request, 'urlopen', local_files_only)
    images, labels = mnist_archives()
    use_mnist_mirrors(monkeypatch, images, labels, ['http://127.0.0.1:9/i'], ['http://127.0.0.1:9/l'])
    share = tmp_path / 'share'
    share.mkdir()
    (share / 'train-images-idx3-ubyte.gz').write_bytes(images)
    (share / 'train-labels-idx1-ubyte.gz').write_bytes(labels)
    monkeypatch.setenv(facegen.data.MIRROR_ENV, str(share))

    assert helper.download_extract('mnist', str(tmp_path / 'data'), source='full') == 'full'
    assert sorted(os.listdir(share)) == ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'], 'kept'

    (share / 'train-labels-idx1-ubyte.gz').write_bytes(labels[:-1] + b'!')  # tampered: refused like a download
    with pytest.raises(AssertionError, match='the network was touched'):  # the bad copy refused, the next mirror tried
        helper.download_extract('mnist', str(tmp_path / 'other'), source='full')
    assert opened[-2:] == [(share / 'train-labels-idx1-ubyte.gz').as_uri(), 'http://127.0.0.1:9/l']
    assert f"{(share / 'train-labels-idx1-ubyte.gz').as_uri()}: corrupted: sha256" in capsys.readouterr().out


def test_a_mirror_url_argument_is_tried_before_the_public_mirrors(server, monkeypatch, tmp_path):
    images, labels = mnist_archives()
    public = [server.route('/public/i', images)], [server.route('/public/l', labels)]
    use_mnist_mirrors(monkeypatch, images, labels, *public)
    server.route('/class/train-images-idx3-ubyte.gz', images)
    server.route('/class/train-labels-idx1-ubyte.gz', labels)

    helper.download_extract('mnist', str(tmp_path), mirror=public[0][0].replace('/public/i', '/class'))

    assert server.hits == ['/class/train-images-idx3-ubyte.gz', '/class/train-labels-idx1-ubyte.gz']


def folder_2017(folder, n, size=(28, 28), mode='L'):
    """A dataset folder as the 2017 helper left it: image_{i}.jpg files and no marker."""
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new(mode, size, 40 + i).save(folder / f'image_{i}.jpg')


def test_a_2017_mnist_folder_is_adopted_with_its_labels(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives(n=6)
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/i', images)], [server.route('/l', labels)])
    folder_2017(tmp_path / 'mnist', 6)

    assert helper.download_extract('mnist', str(tmp_path)) == 'full'

    assert server.hits == ['/l'], 'only the 28 KB labels archive is fetched'
    assert 'Adopted mnist Data' in capsys.readouterr().out
    files = sorted(glob(str(tmp_path / 'mnist' / '*.jpg')))
    assert np.array(Image.open(files[0])).mean() == 40, 'the folder is used as it is'
    np.testing.assert_array_equal(helper.mnist_labels(files), np.load(tmp_path / 'mnist' / 'labels.npy')[
        [int(os.path.basename(f)[6:-4]) for f in files]])
    assert helper.download_extract('mnist', str(tmp_path)) == 'full'
    assert 'Found mnist Data' in capsys.readouterr().out


def test_a_2017_mnist_folder_offline_is_adopted_and_says_the_score_is_skipped(server, monkeypatch, tmp_path, capsys):
    images, labels = mnist_archives(n=6)
    use_mnist_mirrors(monkeypatch, images, labels, [server.route('/i', status=404)], [server.route('/l', status=404)])
    folder_2017(tmp_path / 'mnist', 6)

    assert helper.download_extract('mnist', str(tmp_path)) == 'full'

    out = capsys.readouterr().out
    assert f"No digit labels for {tmp_path / 'mnist'}: the digit score will be skipped" in out
    assert helper.mnist_labels(glob(str(tmp_path / 'mnist' / '*.jpg'))) is None


def test_a_2017_celeba_folder_is_adopted_without_a_download(monkeypatch, tmp_path, no_network, capsys):
    archive = celeba_zip(n=5)
    use_celeba_mirrors(monkeypatch, archive, ['http://127.0.0.1:9/never-used.zip'])
    folder_2017(tmp_path / 'img_align_celeba', 5, size=facegen.data.CELEBA_PICTURE_SIZE, mode='RGB')

    assert helper.download_extract('celeba', str(tmp_path), source='full') == 'full'
    assert 'Adopted celeba Data' in capsys.readouterr().out


def test_a_folder_of_other_pictures_is_set_aside_not_adopted(monkeypatch, tmp_path, capsys):
    archive = celeba_zip(n=5)
    use_celeba_mirrors(monkeypatch, archive, ['http://127.0.0.1:9/never-used.zip'])
    folder_2017(tmp_path / 'img_align_celeba', 5, size=(64, 64), mode='RGB')  # the right count, the wrong pictures
    (tmp_path / 'img_align_celeba.zip').write_bytes(archive)

    assert helper.download_extract('celeba', str(tmp_path), source='full') == 'full'

    [aside] = glob(str(tmp_path / 'img_align_celeba.set-aside-*'))
    out = capsys.readouterr().out
    assert len(os.listdir(aside)) == 5 and f'moved it to {aside}' in out
    assert 'image_0.jpg is 64x64, expected 178x218' in out
