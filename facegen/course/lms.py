"""Who handed in what: the entries of a class's folder or zip, as Moodle, Canvas or a plain folder name them.

    Moodle, "Download all submissions":  Ana Sánchez_10001_assignsubmission_file_dlnd_face_generation.ipynb
    Moodle, "... in folders":            Ana Sánchez_10001_assignsubmission_file_/dlnd_face_generation.ipynb
    Canvas, "Download submissions":      sanchezana_12345_67890_dlnd_face_generation.ipynb (`_late` after the name)
    a plain folder:                      ana.ipynb, ana.html, or a folder ana/ holding the notebook

Every entry of one learner (the notebook, its HTML, a PDF, helper.py, a `-Copy1`) makes one hand-in, which names
the notebook reviewed: the one the course names (dlnd_face_generation.ipynb; Canvas adds `-1` to a resubmission),
else the newest. The raw entries are kept beside the name and ID read from them. A hand-in is hostile: no link is
followed (a link is listed, never a candidate), and a zip's paths stay inside the folder it unpacks to.
"""
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import time
import zipfile
import zlib

from . import inert

COURSE_NOTEBOOK = re.compile(r'^dlnd_face_generation(-\d+)?\.ipynb$')
# Moodle writes `<full name>_<participant ID>_assignsubmission_<plugin>_<original name>`, and a learner writes both
# names: the ID is read from the last such mark (a full name that ends in another's mark does not take their ID), and
# an ID two names claim is flagged (a file named so as to end in another's mark does not take their row).
MOODLE = re.compile(r'^(?P<name>.+)_(?P<id>\d+)_assignsubmission_[a-z]+_(?P<original>.*)$')
CANVAS = re.compile(r'^(?P<name>[a-z0-9-]+?)(?:_late)?_(?P<id>\d+)_\d+_(?P<original>.+)$')
IGNORED = ('.ipynb_checkpoints', '__MACOSX', '.DS_Store')
MAX_UNZIPPED = 4 * 2 ** 30  # what a class's zip may hold, unpacked
NOTES = '.notes.json'  # beside a zip's folder: the entries left out ({path: why}), the names cut ({path: name})
MAX_KEY = 100  # a key's characters: results/KEY.json.new.partial and work/KEY/... stay within a file name's 255 bytes
MAX_NAME_BYTES = 200  # a zip entry's name on disk, in bytes (Linux takes 255)
UTF8_FLAG = 0x800  # a zip entry's flag bit: its name is UTF-8 (else the writer's code page)


@dataclasses.dataclass
class HandIn:
    """One learner's entries in a class's download."""
    key: str  # names the review's files of this learner: results/KEY.json, feedback/KEY.md, work/KEY/
    name: str  # as the LMS wrote it (the entry's own name in a plain folder)
    id: str = ''  # Moodle's participant or Canvas's user ID ('' in a plain folder)
    lms: str = ''  # 'Moodle', 'Canvas' or ''
    entries: list = dataclasses.field(default_factory=list)  # the folder's entries that are this learner's
    files: list = dataclasses.field(default_factory=list)  # their files, relative to the folder
    links: list = dataclasses.field(default_factory=list)  # their links (never followed), relative to the folder
    notebook: str = None  # the notebook reviewed, relative to the folder (None: there is none to review)
    why: str = None  # where there is none: why, for the learner
    problems: list = dataclasses.field(default_factory=list)  # the zip's entries of theirs that were not unpacked

    def record(self):
        """What the gradebook says of this hand-in, beside the review's lines: the names as the LMS wrote them, each
        safe to write (inert.clean: an undecodable byte is the replacement character)."""
        return inert.clean({'name': self.name, 'id': self.id, 'lms': self.lms, 'entries': self.entries,
                            'notebook': self.notebook,
                            'beside': [path for path in self.files if path != self.notebook] + self.problems})


def recognised(entry):
    """(lms, the learner's name, ID, the file's original name) of one entry of a download."""
    for lms, pattern in (('Moodle', MOODLE), ('Canvas', CANVAS)):
        found = pattern.match(entry)
        if found:
            return lms, found['name'], found['id'], found['original']
    stem = entry[:-len('.ipynb')] if entry.endswith('.ipynb') else os.path.splitext(entry)[0] or entry
    return '', stem, '', entry


def hand_ins(folder, zip_links=None, notes=None):
    """
    The hand-ins of a folder, one a learner, in the order of their keys
    :param zip_links: {a path relative to folder: its entry in the zip} of the links a zip held (never made)
    :param notes: What unpacking a zip noted (`unpack`): {'left_out': {path: why it was not unpacked},
                  'names': {path: the entry's name in the zip, where it was too long to keep}}, relative to folder
    """
    notes, found = notes or {}, {}
    names = notes.get('names', {})
    for entry in sorted(os.listdir(folder)):
        if entry in IGNORED or entry.startswith('.'):
            continue
        lms, name, learner_id, original = recognised(names.get(entry, entry))
        hand_in = found.setdefault((lms, name, learner_id), HandIn('', name, learner_id, lms))
        hand_in.entries.append(entry)
        for path, is_link in _files(folder, entry):
            (hand_in.links if is_link else hand_in.files).append(path)
    for path in (zip_links or {}):
        entry = _entry_of(path)
        lms, name, learner_id, _ = recognised(entry)
        hand_in = found.setdefault((lms, name, learner_id), HandIn('', name, learner_id, lms, [entry]))
        hand_in.links.append(path)
    for path, why in notes.get('left_out', {}).items():
        entry = _entry_of(path)
        lms, name, learner_id, _ = recognised(entry)
        hand_in = found.setdefault((lms, name, learner_id), HandIn('', name, learner_id, lms, [entry]))
        hand_in.problems.append(f'{path} (not unpacked: {why})')
    keys, claimed = set(), {}
    for hand_in in found.values():
        hand_in.key = _unique(_key(hand_in), keys)
        hand_in.notebook, hand_in.why = _chosen(folder, hand_in)
        if hand_in.id:
            claimed.setdefault((hand_in.lms, hand_in.id), []).append(hand_in)
    for (lms, learner_id), claimants in claimed.items():
        if len(claimants) > 1:  # one ID, two names: which is the learner's is for the teacher to see
            names = ', '.join(inert.clean(hand_in.name) for hand_in in claimants)
            for hand_in in claimants:
                hand_in.notebook, hand_in.why = None, (
                    f'entries with {len(claimants)} names ({names}) claim {lms} ID {learner_id}: none was reviewed; '
                    'check in the LMS which is this learner\'s and review it alone')
    return sorted(found.values(), key=lambda hand_in: hand_in.key)


def _entry_of(path):
    """The folder's entry a path of the zip belongs to: its first part that names something."""
    return next((part for part in path.replace('\\', '/').split('/') if part not in ('', '.', '..')), path)


def _key(hand_in):
    """A hand-in's key: its name (and ID) as safe, short text for a file name; a long one cut, with a digest of the
    whole, so that it stays stable and apart from others cut alike."""
    key = inert.clean(f'{hand_in.name}_{hand_in.id}' if hand_in.id else hand_in.name).replace('/', '_')
    if len(key) <= MAX_KEY:
        return key
    whole = hashlib.sha256(f'{hand_in.lms}/{hand_in.name}/{hand_in.id}'.encode(errors='surrogateescape'))
    return f'{key[:MAX_KEY - 13]}~{whole.hexdigest()[:12]}'


def _files(folder, entry):
    """(path relative to folder, is a link) of each file of an entry, links not followed."""
    path = os.path.join(folder, entry)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        return [(entry, os.path.islink(path))]
    files = []
    for root, dirs, names in os.walk(path):  # followlinks=False; a link to a folder is listed among dirs
        linked = [name for name in dirs if os.path.islink(os.path.join(root, name))]
        dirs[:] = [name for name in dirs if name not in IGNORED and name not in linked]
        files += [(os.path.relpath(os.path.join(root, name), folder), os.path.islink(os.path.join(root, name)))
                  for name in sorted(names + linked) if name not in IGNORED]
    return files


def _unique(key, taken):
    base, count = key.lstrip('.') or 'hand-in', 1
    key = base
    while key in taken:
        count += 1
        key = f'{base} ({count})'
    taken.add(key)
    return key


def _original(path, hand_in):
    """A file's name as the learner saved it: less the LMS's prefix where the file is an entry of its own."""
    name = os.path.basename(path)
    return recognised(name)[3] if path in hand_in.entries else name


def _chosen(folder, hand_in):
    """(the notebook to review, None) or (None, why there is none)."""
    notebooks = [path for path in hand_in.files if path.endswith('.ipynb')]
    named = [path for path in notebooks if COURSE_NOTEBOOK.match(_original(path, hand_in))]
    candidates = named or notebooks
    if candidates:
        return max(candidates, key=lambda path: (os.lstat(os.path.join(folder, path)).st_mtime, path)), None
    linked = [path for path in hand_in.links if path.endswith('.ipynb')]
    if linked:
        return None, (f'{linked[0]} is a symbolic link: the review follows no link in a hand-in; ask the learner for '
                      'the notebook itself')
    held = ', '.join(hand_in.files[:5]) or 'nothing'
    return None, f'no notebook (.ipynb) among {held}: ask the learner for theirs'


def unpack(archive, into):
    """
    A zip of hand-ins unpacked into a folder, once (whole or not at all), its paths kept inside it, its names read
    as their writer meant them (each too long for a file name cut, with a digest), its files dated as in the zip,
    its links never made; an entry that cannot be unpacked (a damaged one, a name twice) is left out and said
    :return: (the folder of hand-ins in it (the zip's single top folder, where it has one),
              {the links' paths relative to that folder: their entries in the zip},
              what it noted: {'left_out': {path: why}, 'names': {path: its name in the zip, where cut}})
    """
    with zipfile.ZipFile(archive) as zipped:
        members = [(member, _on_disk(_name(member))) for member in zipped.infolist() if not member.is_dir()]
        cut = {name: _name(member) for member, name in members if name != _name(member)}
        # A link in a zip is a file holding its target's path: never made, so never followed
        links = [name for member, name in members if stat.S_ISLNK(member.external_attr >> 16)]
        if not os.path.isdir(into):
            _extract_all(zipped, [(member, name) for member, name in members if name not in links], into, archive,
                         cut)
    notes = {'left_out': {}, 'names': {}}
    with contextlib.suppress(FileNotFoundError), open(into + NOTES, encoding='utf-8') as notes_file:
        notes = json.load(notes_file)
    entries = [entry for entry in os.listdir(into) if entry not in IGNORED]
    wrapped = os.path.join(into, entries[0]) if len(entries) == 1 else None
    folder = wrapped if wrapped and os.path.isdir(wrapped) and not os.path.islink(wrapped) and \
        not recognised(entries[0])[0] else into
    top = os.path.relpath(folder, into)
    depth = 0 if top == '.' else 1
    left_out = {os.path.relpath(path, top): why for path, why in notes['left_out'].items()}
    # {an entry of the folder, as cut: the entry as the zip names it}: the parts of a path are cut one by one
    cut = {path.split('/')[depth]: name.replace('\\', '/').split('/')[depth]
           for path, name in notes['names'].items() if len(path.split('/')) > depth}
    return folder, {os.path.relpath(link, top): link for link in links}, {'left_out': left_out, 'names': cut}


def _on_disk(name):
    """An entry's path with each part that is too long for a file name cut: its start, a digest, its extension."""
    parts = []
    for part in name.replace('\\', '/').split('/'):
        if len(part.encode(errors='surrogateescape')) > MAX_NAME_BYTES:
            stem, extension = os.path.splitext(part)
            digest = hashlib.sha256(part.encode(errors='surrogateescape')).hexdigest()[:12]
            head = stem.encode(errors='surrogateescape')[:MAX_NAME_BYTES - 40].decode(errors='ignore')
            part = f'{head}~{digest}{extension[:20]}'
        parts.append(part)
    return '/'.join(parts)


def _extract_all(zipped, members, into, archive, cut):
    size = sum(member.file_size for member, _ in members)
    if size > MAX_UNZIPPED:
        raise ValueError(f'{archive} unpacks to {size / 2 ** 30:.1f} GB, more than {MAX_UNZIPPED / 2 ** 30:.0f} '
                         'GB: is it the class\'s hand-ins?')
    partial = into + '.partial'
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    left = {}
    try:
        for member, name in members:
            why = _extract(zipped, member, name, partial)
            if why:
                left[name] = why
        with open(into + NOTES, 'w', encoding='utf-8') as notes_file:
            json.dump({'left_out': left, 'names': cut}, notes_file)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a zip stopped halfway is never taken for the class
        raise
    os.replace(partial, into)


def _name(member):
    """An entry's name as its writer meant it: Info-ZIP and others write the machine's own encoding without the
    UTF-8 flag, which Python reads as cp437 (`Bj├╢rn`); UTF-8 bytes among them are read again as UTF-8."""
    if member.flag_bits & UTF8_FLAG:
        return member.filename
    try:
        return member.filename.encode('cp437').decode('utf-8')
    except UnicodeError:
        return member.filename


def _extract(zipped, member, name, into):
    """Unpack one entry (None), or leave it out and say why: each is one learner's, whose row says it."""
    target = os.path.realpath(os.path.join(into, name))
    if not target.startswith(os.path.realpath(into) + os.sep):
        return 'a path outside the folder the zip unpacks to'
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with zipped.open(member) as source, open(target, 'xb') as copy:
            shutil.copyfileobj(source, copy)
    except FileExistsError:
        return 'the zip holds a file of this name twice; the first was unpacked'
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:  # a damaged or odd entry
        with contextlib.suppress(OSError):
            os.remove(target)
        return f'the zip\'s entry is damaged ({inert.clean(str(error))[:100]}): ask for it again'
    except OSError as error:  # a name the disk refuses
        return f'it cannot be written here ({error.strerror})'
    stamp = time.mktime((*member.date_time, 0, 0, -1))  # "newest" is the learner's, not the unpacking's
    os.utime(target, (stamp, stamp))
    return None
