"""What the 2017 helper did, kept as the yardstick: the data benchmark's baseline and the tests' oracle.

It decoded every CelebA JPEG at full size, cropped the central 108x108 face and resized it with Pillow's
bilinear filter, once per batch of every epoch.
"""
import numpy as np
from PIL import Image

FACE_SIZE = 108


def get_image(path, width, height, mode):
    """The 2017 helper's get_image for a CelebA picture: full-size decode, centre crop, bilinear resize."""
    with Image.open(path) as image:
        left, top = (image.size[0] - FACE_SIZE) // 2, (image.size[1] - FACE_SIZE) // 2
        face = image.crop((left, top, left + FACE_SIZE, top + FACE_SIZE)).resize((width, height), Image.BILINEAR)
        return np.array(face.convert(mode))

