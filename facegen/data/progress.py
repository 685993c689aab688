"""The data layer's progress bars: tqdm on stdout (Jupyter shows stderr on a red background, as if something had
gone wrong). A notebook run headless (`make run` sets FACEGEN_PROGRESS=final for its kernel) keeps every line a
bar writes in its executed copy and HTML, so there each bar writes its final line only, and one a minute while it
runs longer; in Jupyter and in a terminal, where a bar redraws in place, it is tqdm's own."""
import os
import sys
import time

from tqdm import tqdm

PROGRESS_ENV = 'FACEGEN_PROGRESS'
FINAL_ONLY = 'final'       # the value of PROGRESS_ENV for a notebook run headless
HEADLESS_EVERY_S = 60      # how often a long bar writes a line there


class DLProgress(tqdm):
    """A tqdm progress bar on stdout that also serves as a `urlretrieve` reporthook (`hook`)."""
    last_block = 0

    def __init__(self, *args, **kwargs):
        self._final_only = os.environ.get(PROGRESS_ENV) == FINAL_ONLY
        self._closing, self._last_line = False, time.monotonic()
        if self._final_only:
            kwargs.setdefault('mininterval', HEADLESS_EVERY_S)
        super().__init__(*args, file=kwargs.pop('file', sys.stdout), **kwargs)

    def display(self, msg=None, pos=None):
        """Draw the bar; headless, only its final state and a line every HEADLESS_EVERY_S seconds."""
        if self._final_only and not self._closing and time.monotonic() - self._last_line < HEADLESS_EVERY_S:
            return True
        self._last_line = time.monotonic()
        return super().display(msg, pos)

    def close(self):
        self._closing = True
        super().close()

    def hook(self, block_num=1, block_size=1, total_size=None):
        """
        Update the bar from urlretrieve's callback
        :param block_num: Number of blocks transferred so far
        :param block_size: Block size in bytes
        :param total_size: Total size in bytes
        """
        self.total = total_size
        self.update((block_num - self.last_block) * block_size)
        self.last_block = block_num
