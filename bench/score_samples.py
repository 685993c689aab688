"""Score saved digit samples (bench/recipe_screen.py's .npz files) with the notebook's digit scorer.

The scorer is trained once, as the notebook trains it, on the 5,000 digits of the offline sample; each file's
samples at each saved step are scored; one JSON object per line: name, seed, step, confident share, class entropy
and Frechet distance.

    python bench/score_samples.py FOLDER_OF_NPZ
"""
import glob
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import facegen  # noqa: E402,F401 (TensorFlow's start-up settings)
import helper  # noqa: E402
from facegen.scores import digits  # noqa: E402
import numpy as np  # noqa: E402


def main(folder):
    with tempfile.TemporaryDirectory() as data:
        helper.download_extract('mnist', data, source='sample')
        files = sorted(glob.glob(os.path.join(data, 'mnist', '*.jpg')))
        scorer = digits.DigitScorer(helper.Dataset('mnist', files).images / 127.5 - 1, helper.mnist_labels(files))
    for path in sorted(glob.glob(os.path.join(folder, '*.npz'))):
        name, seed = os.path.basename(path)[:-len('.npz')].rsplit('__s', 1)
        saved = np.load(path)
        for step in sorted(saved.files, key=int):
            score = scorer.score(saved[step][..., np.newaxis] / 127.5 - 1)
            print(json.dumps({'name': name, 'seed': int(seed), 'step': int(step), **score}), flush=True)


if __name__ == '__main__':
    main(sys.argv[1])
