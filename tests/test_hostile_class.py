"""One learner never harms the class: what a hand-in sends (its evidence, names, zip entries, bytes, sizes) is read
through one small room each, bounded and validated, and whatever it holds stays in that learner's row."""
import csv
import json
import os
import subprocess
import sys
import time
import zipfile

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import solution_without_markers
from test_review_isolation import LINE, needs_the_sandbox, with_body_start
from facegen.course import batch, evidence, gradebook, inert, lms, review, sandbox, scan
from facegen.course.review import Line

SMALL = sandbox.Limits(check_s=20, memory_gb=8, processes=256, file_mb=64, tmp_mb=64)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=20)
KINDS = sorted({branch['properties']['kind']['const'] for branch in evidence.SCHEMA['oneOf']})


def writable(value):
    """Whether every string of a value can be written as UTF-8 (no lone surrogate) and holds no control character."""
    text = json.dumps(value, ensure_ascii=False)
    text.encode('utf-8')
    return not inert.CONTROL.search(text.replace('\\n', '').replace('\\t', ''))


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.builds(lambda kind, fields: {'kind': kind, **fields}, st.sampled_from(KINDS + ['ended']),
                                 st.dictionaries(st.sampled_from(['name', 'step', 'why', 'problems', 'functions',
                                                                  'names', 'broken_cells', 'dataset', 'run',
                                                                  'error', 'function']), JSON))))
def test_the_evidence_reader_returns_an_event_of_the_schema_or_none_for_any_json(value):
    event = evidence.parse(json.dumps(value).encode())
    assert event is None or (event['kind'] in KINDS and writable(event)), event


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_the_evidence_reader_takes_any_bytes_without_raising(raw):
    event = evidence.parse(raw)
    assert event is None or writable(event)


@pytest.mark.parametrize('forged', [
    {'kind': 'loaded', 'problems': ['model_inputs'], 'broken_cells': [], 'functions': {}, 'names': []},
    {'kind': 'ended', 'step': ['test_train'], 'why': 'forged'},  # the review's own kind, never the hand-in's
    {'kind': 'training_end', 'dataset': 'mnist', 'error': {'types': 'Error', 'message': 1}},
    {'kind': 'check', 'name': {'not': 'a name'}},
    {'kind': 'enter', 'function': None, 'args': [], 'kwargs': {}},
])
def test_malformed_events_are_not_evidence(forged):
    assert evidence.parse(json.dumps(forged).encode()) is None
    assert evidence.parse(b'{"kind": "check", "name": "x\\udcff\\u001b[2J"}') == \
        {'kind': 'check', 'name': 'x\ufffd\\x1b[2J'}


def test_the_evidence_read_across_a_hand_ins_children_is_bounded_once():
    budget = sandbox.Budget(size=100, events=10)
    assert all(budget.take(30) for _ in range(3)) and not budget.take(30)
    assert 'its evidence passed what the review reads of one hand-in' in budget.spent()
    assert not sandbox.Budget(size=10 ** 6, events=3).take(1) is False


def make_names(folder, raw_names):
    for raw in raw_names:
        path = os.path.join(os.fsencode(folder), raw)
        with open(path, 'wb') as file:
            file.write(b'{}')


NAME_BYTES = st.binary(min_size=1, max_size=250).filter(
    lambda raw: b'/' not in raw and b'\0' not in raw and raw not in (b'.', b'..') and not raw.startswith(b'.'))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(NAME_BYTES, min_size=1, max_size=6, unique=True))
def test_any_file_names_give_each_learner_a_safe_unique_bounded_key_and_a_writable_record(tmp_path, raw_names):
    folder = tmp_path / f'class{time.monotonic_ns()}'
    folder.mkdir()
    make_names(folder, [raw + b'.ipynb' if len(raw) < 240 else raw for raw in raw_names])
    found = lms.hand_ins(str(folder))
    keys = [hand_in.key for hand_in in found]
    assert len(set(keys)) == len(keys)
    for hand_in in found:
        assert len(hand_in.key) <= lms.MAX_KEY and '/' not in hand_in.key and writable(hand_in.record())
        assert len(f'{hand_in.key}.json.new.partial'.encode()) <= 255
        assert hand_in.notebook is None or os.path.isfile(os.path.join(folder, hand_in.notebook))


def test_a_moodle_name_that_ends_in_another_s_mark_or_a_file_that_does_never_takes_their_row(tmp_path):
    folder = tmp_path / 'moodle'
    folder.mkdir()
    mark = '_10001_assignsubmission_file_'
    for entry in (f'Ana Sánchez{mark}dlnd_face_generation.ipynb',
                  f'Ana Sánchez{mark}x_10002_assignsubmission_file_dlnd_face_generation.ipynb',  # Mallory's name
                  f'Eve_10003_assignsubmission_file_y{mark}dlnd_face_generation.ipynb'):  # Eve's file's name
        nbformat.write(solution_without_markers(), str(folder / entry))
    found = {(hand_in.name, hand_in.id): hand_in for hand_in in lms.hand_ins(str(folder))}
    assert sorted(found) == [('Ana Sánchez', '10001'), (f'Ana Sánchez{mark}x', '10002'),
                             ('Eve_10003_assignsubmission_file_y', '10001')]
    assert found[(f'Ana Sánchez{mark}x', '10002')].notebook, 'a row of its own, reviewed as its own'
    for claimant in (('Ana Sánchez', '10001'), ('Eve_10003_assignsubmission_file_y', '10001')):
        assert found[claimant].notebook is None and 'claim Moodle ID 10001' in found[claimant].why


def test_learners_whose_names_differ_by_a_quote_keep_their_own_marks(tmp_path):
    results = tmp_path / 'results'
    results.mkdir()
    for key in ('Ann', "'Ann"):
        review.write_result(str(results / f'{key}.json'), {**review.result_of(f'{key}.ipynb', [
            Line('PASS', 'The notebook is there')]), 'learner': {'name': key, 'id': ''}})
    gradebook.merge(str(tmp_path))
    with open(tmp_path / 'gradebook.csv', newline='', encoding='utf-8-sig') as book:
        rows = list(csv.DictReader(book))
    for row, mark in zip(rows, ('B', 'A')):
        row[gradebook.FACES] = mark
    with open(tmp_path / 'gradebook.csv', 'w', newline='', encoding='utf-8-sig') as book:
        writer = csv.DictWriter(book, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    marked = {row['feedback']: row[gradebook.FACES] for row in gradebook.merge(str(tmp_path))}
    assert marked == {os.path.join('feedback', "'Ann.html"): 'B', os.path.join('feedback', 'Ann.html'): 'A'}


def test_a_result_with_lone_surrogates_or_one_that_cannot_be_read_stays_in_its_row(tmp_path):
    results = tmp_path / 'results'
    results.mkdir()
    review.write_result(str(results / 'mallory.json'), {**review.result_of('m\udcff.ipynb', [
        Line('FAIL', LINE['model_inputs'], 'raised \udcff\ud800')]), 'learner': {'name': 'Mal\udcfflory'}})
    (results / 'trudy.json').write_text('{"lines": [{"result": 1}]')
    review.write_result(str(results / 'ana.json'),
                        review.result_of('ana.ipynb', [Line('PASS', 'The notebook is there')]))
    rows = {row['learner']: row for row in gradebook.merge(str(tmp_path))}
    assert rows['ana']['score'] == 1 and rows['Mal\ufffdlory'][LINE['model_inputs'].split()[0]] == 'FAIL'
    assert rows['trudy']['The notebook is there'] == 'FAIL'
    assert 'cannot be read' in (tmp_path / 'feedback' / 'trudy.md').read_text()
    assert '\ufffd' in (tmp_path / 'feedback' / 'mallory.md').read_text(encoding='utf-8')


def test_zip_entries_too_long_damaged_or_decoded_alike_stay_in_their_learner_s_row(tmp_path):
    archive = tmp_path / 'class.zip'
    long_name = 'Zed_10009_assignsubmission_file_' + 'é' * 150 + '.ipynb'  # 332 bytes
    with zipfile.ZipFile(archive, 'w', zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr('Ana_10001_assignsubmission_file_dlnd_face_generation.ipynb', 'a' * 1000)
        zipped.writestr('Bob_10002_assignsubmission_file_dlnd_face_generation.ipynb', 'b' * 1000)
        zipped.writestr(long_name, 'z')
    data = bytearray(archive.read_bytes())
    start = data.index(b'Bob_10002') + len('Bob_10002_assignsubmission_file_dlnd_face_generation.ipynb')
    data[start + 5] ^= 0xFF  # Bob's deflated bytes: a bad CRC, or a stream that does not inflate
    archive.write_bytes(bytes(data))
    folder, links, notes = lms.unpack(str(archive), str(tmp_path / 'out'))
    found = {hand_in.name: hand_in for hand_in in lms.hand_ins(folder, links, notes)}
    assert found['Ana'].notebook and found['Zed'].notebook and len(found['Zed'].notebook.encode()) <= 255
    assert found['Bob'].notebook is None and 'damaged' in ' '.join(found['Bob'].record()['beside'])
    assert not os.path.exists(os.path.join(folder, 'Bob_10002_assignsubmission_file_dlnd_face_generation.ipynb'))


def test_the_scan_reads_no_more_of_a_cell_than_its_cap():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('x = 1\n' * 3_500_000)]
    started = time.monotonic()
    assert scan.findings(nb)[0].startswith('cell 1: 21,000,000 characters, more than the scan reads')
    assert time.monotonic() - started < 5


@needs_the_sandbox
def test_the_sandbox_writes_only_to_sized_places(tmp_path):
    handin = tmp_path / 'handin'
    handin.mkdir()
    code = ('import os\nfor path in ("/written", "/usr/written", "/dev/written"):\n'
            '    try: open(path, "w").close(); print("wrote", path)\n    except OSError: pass\n'
            'try:\n    with open("/dev/shm/big", "wb") as f: f.write(b"x" * 32 * 2 ** 20)\n'
            '    print("wrote /dev/shm past its size")\nexcept OSError: pass\n')
    done = subprocess.run([sandbox.bubblewrap()[0], *sandbox._binds(str(handin), None, 16), sys.executable, '-c', code],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and 'wrote' not in done.stdout, done.stdout + done.stderr


def test_a_folder_past_its_limits_is_measured_without_following_links(tmp_path):
    limits = sandbox.Limits(folder_mb=1, folder_files=50)
    for index in range(20):
        (tmp_path / f'f{index}').write_bytes(b'x' * 10_000)
    os.symlink('/usr', tmp_path / 'usr')
    assert sandbox.folder_over(str(tmp_path), limits) is None
    (tmp_path / 'big').write_bytes(os.urandom(2 * 2 ** 20))
    assert sandbox.folder_over(str(tmp_path), limits) == 'more than 1 MB'
    for index in range(40):
        (tmp_path / f'g{index}').touch()
    assert sandbox.folder_over(str(tmp_path), limits) == 'more than 50 files and folders'


def leftover_cgroups():
    """The review's pids cgroups whose process has ended: a review running beside the suite keeps its own."""
    found = []
    for root in sandbox.PIDS_CGROUPS:
        for name in os.listdir(root) if os.path.isdir(root) else []:
            if name.startswith('facegen-review-') and not os.path.exists(f'/proc/{name.split("-")[2]}'):
                found.append(name)
    return found


def moodle_zip(path, entries):
    with zipfile.ZipFile(path, 'w') as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
    return path


@needs_the_sandbox
def test_a_chaos_class_grades_its_two_honest_learners_right(tmp_path):
    """Every learner but two attacks the class a different way; the gradebook comes out, the honest two graded
    right, each attacker in a row of their own that says what was wrong, no review waiting on a silent child."""
    solved = nbformat.writes(solution_without_markers())
    silent = nbformat.writes(with_body_start(solution_without_markers(), 'model_loss', """
import os, sys, time
fd = int(sys.argv[sys.argv.index('--evidence-fd') + 1])
os.write(fd, b'{"kind": "loaded", "problems": [1]}\\n')
os.close(fd)
time.sleep(600)
"""))
    surrogate = nbformat.writes(with_body_start(solution_without_markers(), 'model_inputs',
                                                "raise ValueError('\\udcff\\x1b[2J')"))
    mark = '_assignsubmission_file_dlnd_face_generation.ipynb'
    archive = moodle_zip(tmp_path / 'class.zip', {
        f'Ana Sánchez_10001{mark}': solved, f'Ben Ode_10002{mark}': solved,
        f'Ana Sánchez_10001_assignsubmission_file_x_10003{mark}': '{}',  # a name ending in Ana's mark
        f'Hugo Hang_10004{mark}': silent, f'{"L" * 240}_10006{mark}': surrogate,  # a long name, a lone surrogate
        f'Zed_10007_assignsubmission_file_{"é" * 150}.ipynb': '{not a notebook',
    })
    out = tmp_path / 'out'
    started = time.monotonic()
    status = batch.main(['--handins', str(archive), '--out', str(out), '--jobs', '2', '--check-seconds', '30'])
    assert status == 0 and time.monotonic() - started < 400
    rows = {row['learner']: row for row in gradebook.merge(str(out))}
    assert rows['Ana Sánchez']['score'] == rows['Ben Ode']['score'] == len(gradebook.SCORED)
    assert rows['Ana Sánchez_10001_assignsubmission_file_x']['ID'] == '10003'
    assert rows['Hugo Hang']['model_loss'] == 'FAIL' and rows['Hugo Hang']['model_inputs'] == 'PASS'
    hugo = next((out / 'feedback').glob('Hugo Hang*.md')).read_text(encoding='utf-8')
    assert 'its evidence stopped being readable' in hugo, hugo
    assert rows['L' * 240]['model_inputs'] == 'FAIL' and rows['L' * 240]['generator'] == 'PASS'
    assert '\ufffd' in next((out / 'feedback').glob('LLL*.md')).read_text(encoding='utf-8')
    assert rows['Zed']['The notebook is there'] == 'FAIL'
    for name in ('gradebook.csv', 'gradebook.xlsx', 'moodle_grades.csv', 'canvas_grades.csv'):
        assert (out / name).is_file()
    assert leftover_cgroups() == []


def test_a_review_that_fails_in_the_teachers_process_is_its_learners_row_alone(tmp_path, monkeypatch):
    for folder in ('results', 'work'):
        (tmp_path / folder).mkdir()
    hand_in = lms.HandIn('mallory', 'Mallory', notebook='mallory.ipynb')

    def breaks(*args):
        raise OSError('No space left on device')
    monkeypatch.setattr(batch, 'review_one', breaks)
    assert batch.review_contained(None, hand_in, str(tmp_path), str(tmp_path), False, SMALL, None) == (hand_in, None)
    [row] = gradebook.merge(str(tmp_path))
    assert row['The notebook is there'] == 'FAIL' and row['learner'] == 'Mallory'
    assert 'its review failed here (OSError: No space left on device)' in \
        (tmp_path / 'feedback' / 'mallory.md').read_text()


@needs_the_sandbox
def test_a_review_ended_by_a_signal_leaves_no_temporary_folder(tmp_path):
    import signal
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    notebook = write_notebook(tmp_path)
    review_process = subprocess.Popen([sys.executable, '-m', 'facegen', 'review', notebook, '--quiet'],
                                      env={**os.environ, 'TMPDIR': str(temporary)}, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(temporary.glob('facegen-review-*')) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(temporary.glob('facegen-review-*')), 'the review made no temporary folder'
    review_process.send_signal(signal.SIGTERM)
    assert review_process.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(temporary.glob('facegen-review-*'))


def write_notebook(tmp_path):
    path = tmp_path / 'dlnd_face_generation.ipynb'
    nbformat.write(solution_without_markers(), str(path))
    return str(path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(NAME_BYTES, min_size=1, max_size=4, unique=True), st.text(max_size=40))
def test_any_names_and_messages_reach_the_gradebook_feedback_and_lms_files(tmp_path, raw_names, message):
    """Arbitrary bytes for names and arbitrary text for a message, through the merge: every file is written."""
    out = tmp_path / f'out{time.monotonic_ns()}'
    folder = out / 'class'
    (out / 'results').mkdir(parents=True)
    folder.mkdir()
    make_names(folder, [b'x ' + raw[:200] + b'.ipynb' for raw in raw_names])
    for hand_in in lms.hand_ins(str(folder)):
        review.write_result(str(out / 'results' / f'{hand_in.key}.json'), {**review.result_of(
            str(folder / 'x.ipynb'), [Line('FAIL', LINE['model_inputs'], message)]), 'learner': hand_in.record()})
    rows = gradebook.merge(str(out))
    assert len(rows) == len(raw_names) and len(list((out / 'feedback').glob('*.html'))) == len(raw_names)
    assert (out / 'gradebook.xlsx').is_file() and (out / 'canvas_grades.csv').is_file()
