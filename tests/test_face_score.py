"""The face score: real faces score high; noise, grey, non-faces and upside-down faces low; a collapsed generator
has no variety and a memorising one no novelty; grey and colour, a memory map or an array, are one code path."""
import os
from glob import glob

import numpy as np
import pytest
from PIL import Image
from skimage.data import lfw_subset

import helper
from facegen.scores import faces


@pytest.fixture(scope='module')
def sample_faces(tmp_path_factory):
    """The offline sample's 100 faces as the notebook's Dataset holds them: uint8, 28x28 RGB, memory-mapped."""
    data = str(tmp_path_factory.mktemp('data'))
    helper.download_extract('celeba', data, source='sample')
    return helper.Dataset('celeba', sorted(glob(os.path.join(data, 'img_align_celeba', '*.jpg')))).images


@pytest.fixture(scope='module')
def scorer(sample_faces):
    return faces.FaceScorer(sample_faces)


def as_generated(pixels):
    """0-255 images as a generator's output, floats in [-1, 1]."""
    return np.asarray(pixels, dtype=np.float32) / 127.5 - 1


def lfw_28(part):
    """scikit-image's lfw_subset (100 faces, then 100 non-faces, 25x25) shrunk to 28x28 like a generator's output."""
    return np.stack([np.array(Image.fromarray((image * 255).round().astype(np.uint8)).resize((28, 28), Image.BILINEAR))
                     for image in lfw_subset()[part]])[..., np.newaxis]


def test_real_faces_are_found(scorer, sample_faces):
    real = scorer.real_figures()
    assert real['face_share'] >= 0.85
    assert faces.face_share(lfw_28(slice(0, 100))) >= 0.85
    assert scorer.score(as_generated(sample_faces))['face_share'] == real['face_share']


@pytest.mark.parametrize('name, pixels, at_most', [
    ('noise', np.random.default_rng(0).integers(0, 256, (100, 28, 28, 3)), 0.0),
    ('flat grey', np.full((20, 28, 28, 3), 128), 0.0),
    ('lfw_subset non-faces', lfw_28(slice(100, 200)), 0.02),
])
def test_what_is_not_a_face_is_not_found(scorer, name, pixels, at_most):
    assert scorer.score(as_generated(pixels))['face_share'] <= at_most, name


def test_upside_down_faces_are_mostly_not_found(scorer, sample_faces):
    score = scorer.score(as_generated(sample_faces[:, ::-1]))
    assert score['face_share'] <= 0.35 < scorer.real_figures()['face_share'] - 0.5


def test_a_generator_collapsed_to_one_face_has_no_variety(scorer, sample_faces):
    average = np.mean(sample_faces, axis=0, keepdims=True)  # a face no training face is: novelty is not the point
    score = scorer.score(as_generated(np.repeat(average, 200, axis=0)))
    assert score['face_share'] >= 0.9, 'the detector alone would reward it'
    assert score['variety'] < 0.05 < 0.8 < score['real_variety']


def test_a_generator_that_hands_back_its_training_faces_has_no_novelty(scorer, sample_faces):
    score = scorer.score(as_generated(sample_faces))
    assert score['novelty'] < 0.05 < 0.5 < score['real_novelty']
    assert abs(score['variety'] - score['real_variety']) < 0.01, 'as varied as the real faces'


def test_new_faces_are_as_far_from_the_training_faces_as_real_faces_are_from_each_other(sample_faces):
    held_out = faces.FaceScorer(sample_faces[:80])
    score = held_out.score(as_generated(sample_faces[80:]))
    assert abs(score['novelty'] - score['real_novelty']) < 0.2 and score['novelty'] > 0.5


def test_grey_and_colour_faces_score_alike(scorer, sample_faces):
    grey = np.asarray(sample_faces, dtype=np.float32) @ faces.LUMA
    assert scorer.score(as_generated(grey[..., np.newaxis])) == pytest.approx(
        scorer.score(as_generated(sample_faces)), abs=0.01)
    grey_scorer = faces.FaceScorer(grey.round().astype(np.uint8)[..., np.newaxis])
    assert grey_scorer.real_figures() == pytest.approx(scorer.real_figures(), abs=0.01)


def test_a_large_dataset_is_read_in_chunks(sample_faces, monkeypatch):
    whole = faces.FaceScorer(sample_faces).score(as_generated(sample_faces[:10]))
    monkeypatch.setattr(faces, 'CHUNK', 7)
    monkeypatch.setattr(faces, 'REFERENCE_FACES', 30)
    chunked = faces.FaceScorer(sample_faces)
    assert len(chunked.real_figures()) == 5
    assert chunked.score(as_generated(sample_faces[:10]))['novelty'] == pytest.approx(whole['novelty'], abs=1e-5)


def test_faces_of_the_wrong_range_have_too_little_contrast(scorer, sample_faces):
    """A generator fed real faces in [-0.5, 0.5] (batches not doubled) learns faces of half their contrast."""
    halved = scorer.score(as_generated(sample_faces) / 2)
    assert halved['contrast'] == pytest.approx(halved['real_contrast'] / 2, rel=0.02)
    assert halved['face_share'] > 0.8 and halved['novelty'] < 0.05, 'the detector and the distances do not see it'


def test_speckled_faces_have_more_grain(scorer, sample_faces):
    """A generator without batch normalization draws speckle and colour noise over its faces."""
    speckle = np.random.default_rng(0).normal(0, 12, sample_faces.shape)
    score = scorer.score(as_generated(np.clip(sample_faces + speckle, 0, 255)))
    assert score['grain'] > 1.5 * score['real_grain']
    assert scorer.score(as_generated(sample_faces))['grain'] == pytest.approx(score['real_grain'], rel=0.02)


def test_grid_figures_are_named_for_tensorboard_and_described_for_a_learner(scorer, sample_faces):
    assert set(scorer.grid_figures(as_generated(sample_faces[:25]))) == {
        'faces/found', 'faces/contrast', 'faces/grain', 'faces/variety', 'faces/novelty'}
    text = faces.describe_faces(scorer.score(as_generated(sample_faces[:25])))
    assert text.startswith('Faces a face detector finds: ') and '(real faces: ' in text and len(text.splitlines()) == 5


def test_a_missing_detector_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(faces.cv2.data, 'haarcascades', str(tmp_path))
    faces._cascade.cache_clear()  # a failed load is not cached: the tests after this one load the real one
    with pytest.raises(OSError, match='opencv-python-headless 4.x ships it'):
        faces.face_share(np.zeros((1, 28, 28)))

