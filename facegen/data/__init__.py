"""The data machinery behind helper.py, one concern a module; helper.py is what the notebook calls.

- registry: the datasets' table (files, sizes, checksums, mirrors) and the sizes every module shares
- errors: one exception class for each failure a user can meet
- files: locks, files and folders replaced whole, image counts, errors of the disk
- progress: the progress bars (in a notebook run headless, one line a bar)
- download: one archive from its mirrors, resumed where it can be, verified by SHA-256; no business logic
- extract: an archive unpacked into a folder, refusing what does not belong; no business logic
- sample: the offline sample, real images that installed packages ship
- folders: the dataset folders (their markers, staging, setting aside, the 2017 helper's folders)
- install: the policy of download_extract: what a folder needs, and doing it
- cache: the preprocessed images, decoded once into a checked, memory-mapped file
"""
