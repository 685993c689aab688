"""The digit quality score ranks real digits above blurred digits above noise."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import helper
import facegen.data
from facegen.scores.digits import DigitScorer, frechet_distance


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    """The 5,000 real digits of the offline sample, in [-1, 1], with their labels."""
    data = tmp_path_factory.mktemp('data')
    helper.download_extract('mnist', str(data), source='sample')
    files = [str(data / 'mnist' / f'image_{i}.jpg') for i in range(5000)]
    images = helper.Dataset('mnist', files).images.astype(np.float32) / 127.5 - 1
    return images, np.load(data / 'mnist' / facegen.data.LABELS_NAME)


@pytest.fixture(scope='module')
def scorer(digits):
    images, labels = digits
    order = np.random.default_rng(0).permutation(len(images))
    train = order[:4000]  # the last 1,000 stay unseen
    scorer = DigitScorer(images[train], labels[train], epochs=4)
    yield scorer
    scorer.close()


@pytest.fixture(scope='module')
def scores(digits, scorer):
    images, _ = digits
    unseen = images[np.random.default_rng(0).permutation(len(images))[4000:]]
    blurred = gaussian_filter(unseen, sigma=(0, 1.5, 1.5, 0))
    blurred = blurred / np.abs(blurred).max(axis=(1, 2, 3), keepdims=True)
    noise = np.random.default_rng(1).uniform(-1, 1, unseen.shape).astype(np.float32)
    return {name: scorer.score(x) for name, x in (('real', unseen), ('blurred', blurred), ('noise', noise))}


def test_real_digits_are_classified_confidently(scores):
    assert scores['real']['confident_share'] > 0.85
    assert scores['real']['class_entropy'] > 0.95


@pytest.mark.parametrize('key', ['confident_share'])
def test_confidence_ranks_real_above_blurred_above_noise(scores, key):
    assert scores['real'][key] > scores['blurred'][key] > scores['noise'][key]


def test_frechet_distance_ranks_real_below_blurred_below_noise(scores):
    assert scores['real']['frechet_distance'] < scores['blurred']['frechet_distance'] \
        < scores['noise']['frechet_distance']
    assert scores['real']['frechet_distance'] < 3 * scores['real']['real_frechet_distance'] + 1


def test_one_repeated_digit_has_low_class_entropy(digits, scorer):
    images, labels = digits
    sevens = images[labels == 7][:200]
    assert scorer.score(sevens)['class_entropy'] < 0.2


def test_frechet_distance_of_identical_sets_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 8))
    assert frechet_distance(features, features) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(features, features + 1) == pytest.approx(8, rel=1e-3)
