"""A quality score for generated digits, in the manner of TF-GAN's MNIST classifier score.

A small CNN is trained on the real MNIST digits at hand (the full set or the offline sample). For generated
digits it reports the share it classifies with probability >= 0.9, how evenly the ten digits appear, and the
Frechet distance between its penultimate-layer features of generated and real digits, with the distance
between two halves of the real digits beside it for scale. A classifier trained on digits alone is sure of some
noise too (0 to 19% of uniform noise classified with probability >= 0.9 across seeds, measured): each batch also
holds uniform noise taught as no digit in particular (every class equally likely), so that noise scores near 0.
"""

import numpy as np
import scipy.linalg
import tensorflow.compat.v1 as tf

CONFIDENT = 0.9
N_CLASSES = 10
NOISE_SHARE = 0.25  # of each training batch's size: uniform noise with the uniform distribution as its target


def _classifier(images, training):
    """28x28x1 in [-1, 1] -> (128 features, 10 logits)."""
    x = tf.layers.conv2d(images, 32, 3, padding='same', activation=tf.nn.relu)
    x = tf.layers.max_pooling2d(x, 2, 2)                                 # 14x14x32
    x = tf.layers.conv2d(x, 64, 3, padding='same', activation=tf.nn.relu)
    x = tf.layers.max_pooling2d(x, 2, 2)                                 # 7x7x64
    features = tf.layers.dense(tf.layers.flatten(x), 128, activation=tf.nn.relu)
    logits = tf.layers.dense(tf.layers.dropout(features, 0.3, training=training), N_CLASSES)
    return features, logits


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two sets of feature vectors (rows)."""
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    # A small ridge keeps the product invertible when a feature never fires (ReLU units can be dead).
    ridge = 1e-6 * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


class DigitScorer:
    """
    A digit classifier trained on real digits, and the scores it gives generated ones
    :param images: Real digits, (n, 28, 28, 1), floats in [-1, 1]
    :param labels: Their classes, (n,) integers 0-9
    :param epochs: Passes over the real digits (default: about 30,000 digits' worth, 1 to 6 passes)
    :param seed: Seed of the initial weights and the batch order
    """

    def __init__(self, images, labels, epochs=None, seed=0, batch_size=64):
        self.real_images = np.asarray(images, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.set_random_seed(seed)
            self._images = tf.placeholder(tf.float32, (None, 28, 28, 1))
            self._targets = tf.placeholder(tf.float32, (None, N_CLASSES))  # a digit's one-hot, or uniform
            self._training = tf.placeholder_with_default(False, ())
            self._features, logits = _classifier(self._images, self._training)
            self._probs = tf.nn.softmax(logits)
            loss = tf.losses.softmax_cross_entropy(self._targets, logits)
            train_op = tf.train.AdamOptimizer(1e-3).minimize(loss)
            self._session = tf.Session(graph=self._graph)
            self._session.run(tf.global_variables_initializer())
        rng = np.random.default_rng(seed)
        n_noise = int(batch_size * NOISE_SHARE)
        one_hot, uniform = np.eye(N_CLASSES, dtype=np.float32), np.full((n_noise, N_CLASSES), 1 / N_CLASSES, np.float32)
        for _ in range(epochs or int(np.clip(30000 // len(labels), 1, 6))):
            order = rng.permutation(len(labels))
            for start in range(0, len(order) - batch_size + 1, batch_size):
                batch = order[start:start + batch_size]
                noise = rng.uniform(-1, 1, (n_noise, 28, 28, 1)).astype(np.float32)
                self._session.run(train_op, {
                    self._images: np.concatenate([self.real_images[batch], noise]),
                    self._targets: np.concatenate([one_hot[labels[batch]], uniform]),
                    self._training: True})

    def features_and_probabilities(self, images, batch_size=500):
        """Penultimate-layer features and class probabilities of images in [-1, 1]."""
        images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1)
        parts = [self._session.run((self._features, self._probs), {self._images: images[i:i + batch_size]})
                 for i in range(0, len(images), batch_size)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def score(self, images):
        """
        Score digits against the real ones
        :param images: Digits, (n, 28, 28, 1), floats in [-1, 1]
        :return: dict with confident_share (probability >= 0.9), class_entropy (0 to 1: 1 means all ten digits
                 equally often), frechet_distance to the real digits and real_frechet_distance (between two
                 halves of the real digits of the same size, for scale)
        """
        features, probabilities = self.features_and_probabilities(images)
        real_features, _ = self.features_and_probabilities(self.real_images)
        classes = np.bincount(probabilities.argmax(axis=1), minlength=N_CLASSES) / len(probabilities)
        nonzero = classes[classes > 0]
        n = min(len(images), len(real_features) // 2)
        halves = np.random.default_rng(0).permutation(len(real_features))
        return {
            'confident_share': float((probabilities.max(axis=1) >= CONFIDENT).mean()),
            'class_entropy': float((nonzero * np.log(1 / nonzero)).sum() / np.log(N_CLASSES)),
            'frechet_distance': frechet_distance(features, real_features),
            'real_frechet_distance': frechet_distance(real_features[halves[:n]], real_features[halves[n:2 * n]]),
        }

    def close(self):
        self._session.close()
