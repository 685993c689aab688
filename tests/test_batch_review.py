"""A real class, graded right: a Moodle download reviewed as one row a learner, a second download read again for
what changed, a gradebook a spreadsheet and an LMS take, feedback a learner can read."""
import csv
import shutil
import time
import zipfile

import nbformat
import pytest

from conftest import solution_without_markers
from facegen.course import batch, exercise, gradebook, lms

MOODLE = '{name}_{id}_assignsubmission_file_{file}'
CHECK_S = '60'


def moodle_zip(path, files):
    """A zip as Moodle's "Download all submissions" gives it: {(learner, participant ID, file name): bytes}, each
    file dated a minute after the one before (the order given)."""
    stamp = time.localtime(time.time() - 3600)
    with zipfile.ZipFile(path, 'w') as zipped:
        for minute, ((name, learner_id, file), data) in enumerate(files.items()):
            info = zipfile.ZipInfo(MOODLE.format(name=name, id=learner_id, file=file),
                                   time.localtime(time.mktime(stamp) + 60 * minute)[:6])
            zipped.writestr(info, data)
    return path


def notebook_bytes(nb):
    return nbformat.writes(nb).encode()


SOLVED = notebook_bytes(solution_without_markers())
NOT_WRITTEN = open(exercise.EXERCISE, 'rb').read()


def exits_as_it_loads():
    nb = solution_without_markers()
    nb.cells.insert(1, nbformat.v4.new_code_cell('import os\nos._exit(0)\ndef model_inputs(): pass'))
    return notebook_bytes(nb)


FIRST_DOWNLOAD = {
    ('Ana Sánchez', 10001, 'dlnd_face_generation.ipynb'): SOLVED,
    ('Ana Sánchez', 10001, 'dlnd_face_generation.html'): b'<html></html>',
    ('Björn Ødegård', 10002, 'dlnd_face_generation.ipynb'): NOT_WRITTEN,
    ('Ivan Petrov', 10003, 'dlnd_face_generation.ipynb'): SOLVED,
    ('Ivan Petrov', 10003, 'dlnd_face_generation-Copy1.ipynb'): NOT_WRITTEN,  # newer, not the course's name
    ('Jo Lee', 10004, 'report.pdf'): b'%PDF-1.4',
    ('Kim Ng', 10005, 'my_gan.ipynb'): exits_as_it_loads(),
}


@pytest.fixture(scope='module')
def first(tmp_path_factory):
    folder = tmp_path_factory.mktemp('class')
    archive = moodle_zip(folder / 'DLND-Face Generation-4821.zip', FIRST_DOWNLOAD)
    out = folder / 'out'
    code = batch.main(['--handins', str(archive), '--jobs', '2', '--out', str(out), '--check-seconds', CHECK_S])
    return out, code


def gradebook_rows(out):
    with open(out / 'gradebook.csv', newline='', encoding='utf-8') as book:
        text = book.read()
    assert text.startswith('\ufeff'), 'the byte-order mark spreadsheets need to read UTF-8'
    rows = list(csv.DictReader(text[1:].splitlines(), quoting=csv.QUOTE_NONNUMERIC))
    return {row['learner']: row for row in rows}


def test_a_moodle_download_gets_one_row_a_learner_named_and_numbered_as_moodle_has_them(first):
    out, code = first
    rows = gradebook_rows(out)
    assert code == 0
    assert sorted(rows) == ['Ana Sánchez', 'Björn Ødegård', 'Ivan Petrov', 'Jo Lee', 'Kim Ng']
    ana = rows['Ana Sánchez']
    assert ana['ID'] == '10001' and ana['score'] == 8 and ana['out of'] == 8
    assert ana['notebook reviewed'] == 'Ana Sánchez_10001_assignsubmission_file_dlnd_face_generation.ipynb'
    assert ana['files beside it'] == 'Ana Sánchez_10001_assignsubmission_file_dlnd_face_generation.html'
    assert set(ana[column] for column in gradebook.COLUMNS) == {'PASS'} and ana[gradebook.FACES] == ''
    ivan = rows['Ivan Petrov']
    assert ivan['notebook reviewed'].endswith('_file_dlnd_face_generation.ipynb') and ivan['score'] == 8, \
        'the notebook the course names, not the newer -Copy1'
    assert ivan['files beside it'].endswith('dlnd_face_generation-Copy1.ipynb')
    bjorn = rows['Björn Ødegård']
    assert bjorn['score'] == 1 and bjorn['model_inputs'] == 'FAIL', 'the notebook there; functions, hyperparameters not'
    assert rows['Jo Lee']['score'] == 0 and 'no notebook (.ipynb) among Jo Lee_10004' in \
        (out / rows['Jo Lee']['feedback']).read_text()
    assert rows['Kim Ng']['The notebook is there'] == 'FAIL' and rows['Kim Ng']['notebook reviewed'].endswith(
        'my_gan.ipynb')


def test_one_bug_costs_one_line_of_the_score(first):
    """A learner whose one function fails loses that line; "All the unit tests pass" repeats it, uncounted."""
    rows = gradebook_rows(first[0])
    assert rows['Björn Ødegård']['All the unit tests pass'] == 'FAIL'
    assert gradebook.SCORED == ('The notebook is there', 'model_inputs', 'discriminator', 'generator', 'model_loss',
                                'model_opt', 'train', 'The hyperparameters are reasonable')


def test_the_gradebook_opens_the_same_as_a_workbook(first):
    from openpyxl import load_workbook
    out = first[0]
    sheet = load_workbook(out / 'gradebook.xlsx').active
    header, *values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert tuple(header) == gradebook.HEADER
    by_name = {row[0]: dict(zip(header, row)) for row in values}
    for name, row in gradebook_rows(out).items():
        assert by_name[name]['score'] == row['score'] and isinstance(by_name[name]['score'], int)
        assert (by_name[name]['model_inputs'] or '') == row['model_inputs'] and by_name[name]['ID'] == row['ID']


def test_the_marks_a_teacher_typed_for_the_faces_survive_the_next_merge(first, tmp_path):
    """Typed into the CSV or into the workbook: a second download merges the gradebook again and keeps them."""
    from openpyxl import load_workbook
    out = tmp_path / 'out'
    shutil.copytree(first[0], out)
    with open(out / 'gradebook.csv', newline='', encoding='utf-8-sig') as book:
        rows = list(csv.reader(book))
    rows[[row[0] for row in rows].index('Ana Sánchez')][rows[0].index(gradebook.FACES)] = 'faces, 4/5'
    with open(out / 'gradebook.csv', 'w', newline='', encoding='utf-8-sig') as book:
        csv.writer(book).writerows(rows)
    workbook = load_workbook(out / 'gradebook.xlsx')
    sheet = workbook.active
    names = [cell.value for cell in sheet['A']]
    sheet.cell(names.index('Ivan Petrov') + 1, gradebook.HEADER.index(gradebook.FACES) + 1, 3)
    workbook.save(out / 'gradebook.xlsx')
    gradebook.merge(str(out))
    assert gradebook_rows(out)['Ana Sánchez'][gradebook.FACES] == 'faces, 4/5'
    assert gradebook_rows(out)['Ivan Petrov'][gradebook.FACES] == 3
    sheet = load_workbook(out / 'gradebook.xlsx').active
    marked = {row[0]: row[gradebook.HEADER.index(gradebook.FACES)] for row in sheet.iter_rows(values_only=True)}
    assert marked['Ana Sánchez'] == 'faces, 4/5' and marked['Ivan Petrov'] == 3 and marked['Jo Lee'] is None


def test_moodle_and_canvas_import_files_hold_each_learner_s_grade_in_their_columns(first):
    out = first[0]
    with open(out / 'moodle_grades.csv', newline='', encoding='utf-8') as book:
        moodle = {row['Identifier']: row for row in csv.DictReader(book)}
    assert sorted(moodle) == [f'Participant 1000{n}' for n in range(1, 6)]
    assert moodle['Participant 10001']['Grade'] == '8' and moodle['Participant 10001']['Maximum grade'] == '8'
    assert 'to fix: model_inputs' in moodle['Participant 10002']['Feedback comments']
    with open(out / 'canvas_grades.csv', newline='', encoding='utf-8') as book:
        canvas = list(csv.DictReader(book))
    assert list(canvas[0])[:5] == ['Student', 'ID', 'SIS User ID', 'SIS Login ID', 'Section']
    assert canvas == [{**{key: '' for key in gradebook.CANVAS_HEADER}, 'Student': 'Points Possible',
                       gradebook.ASSIGNMENT: '8'}], 'no Canvas learner in a Moodle download'


def test_each_learner_gets_feedback_as_a_page_titled_with_their_name(first):
    out = first[0]
    page = (out / 'feedback' / 'Björn Ødegård_10002.html').read_text(encoding='utf-8')
    assert '<title>Review of the face generation project of Björn Ødegård</title>' in page
    assert '<table>' in page and '<td>FAIL</td>' in page and 'model_inputs is not implemented yet' in page
    assert (out / 'feedback' / 'Björn Ødegård_10002.md').is_file()


def test_a_second_download_reviews_the_late_learner_and_the_fixed_notebook_only(first, tmp_path, capsys):
    out = tmp_path / 'out'
    shutil.copytree(first[0], out)
    kept = {path.name: path.stat().st_mtime_ns for path in (out / 'results').iterdir()}
    second = {**FIRST_DOWNLOAD, ('Björn Ødegård', 10002, 'dlnd_face_generation.ipynb'): SOLVED,
              ('Zoe Late', 10006, 'dlnd_face_generation.ipynb'): SOLVED}
    archive = moodle_zip(tmp_path / 'DLND-Face Generation-4821 (1).zip', second)
    assert batch.main(['--handins', str(archive), '--out', str(out), '--check-seconds', CHECK_S]) == 0
    printed = capsys.readouterr().out
    assert '6 learners in' in printed and '5 with a notebook; 3 reviewed before and unchanged; 2 to review' in printed
    rows = gradebook_rows(out)
    assert rows['Björn Ødegård']['score'] == 8 and rows['Zoe Late']['score'] == 8
    changed = {name for name, stamp in kept.items() if (out / 'results' / name).stat().st_mtime_ns != stamp}
    assert changed == {'Björn Ødegård_10002.json', 'Jo Lee_10004.json'}, 'Jo has no notebook: her row is made again'
    assert batch.main(['--handins', str(archive), '--out', str(out), '--check-seconds', CHECK_S,
                       '--again', 'Ana Sánchez']) == 0
    assert '1 to review' in capsys.readouterr().out


def unzipped(folder, archive):
    """folder zipped as an LMS zips a download (its entries at the top, their dates kept), then unpacked again."""
    with zipfile.ZipFile(archive, 'w') as zipped:
        for path in sorted(folder.rglob('*')):
            if path.is_file():
                zipped.write(path, path.relative_to(folder).as_posix())
    return lms.unpack(str(archive), str(archive) + '.unpacked')[0]


def test_a_moodle_download_in_folders_and_a_canvas_download_name_the_same_learners(tmp_path):
    in_folders = tmp_path / 'moodle'
    for (name, learner_id, file), data in FIRST_DOWNLOAD.items():
        folder = in_folders / MOODLE.format(name=name, id=learner_id, file='')
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(data)
    found = {hand_in.name: hand_in for hand_in in lms.hand_ins(str(in_folders))}
    assert sorted(found) == ['Ana Sánchez', 'Björn Ødegård', 'Ivan Petrov', 'Jo Lee', 'Kim Ng']
    assert sorted(hand_in.name for hand_in in lms.hand_ins(unzipped(in_folders, tmp_path / 'moodle.zip'))) == \
        sorted(found)
    assert found['Ivan Petrov'].notebook.endswith('/dlnd_face_generation.ipynb') and found['Ivan Petrov'].id == \
        '10003' and found['Ivan Petrov'].lms == 'Moodle'
    canvas = tmp_path / 'canvas'
    canvas.mkdir()
    for entry in ('sanchezana_12345_67890_dlnd_face_generation.ipynb', 'sanchezana_12345_67891_report.html',
                  'petrovivan_late_12346_67892_dlnd_face_generation-1.ipynb',
                  'petrovivan_late_12346_67893_dlnd_face_generation-Copy1.ipynb'):
        (canvas / entry).write_bytes(SOLVED)
    found = {hand_in.name: hand_in for hand_in in lms.hand_ins(str(canvas))}
    assert [hand_in.record() for hand_in in lms.hand_ins(unzipped(canvas, tmp_path / 'canvas.zip'))] == \
        [found[name].record() for name in sorted(found)], 'the same from the download\'s zip'
    assert sorted(found) == ['petrovivan', 'sanchezana']
    assert found['petrovivan'].id == '12346' and found['petrovivan'].lms == 'Canvas'
    assert found['petrovivan'].notebook == 'petrovivan_late_12346_67892_dlnd_face_generation-1.ipynb'
    assert found['sanchezana'].entries == ['sanchezana_12345_67890_dlnd_face_generation.ipynb',
                                           'sanchezana_12345_67891_report.html']


class InfoZipName(zipfile.ZipInfo):
    """A name as Info-ZIP's zip writes it on Linux: its UTF-8 bytes, without the flag that says they are UTF-8."""
    def _encodeFilenameFlags(self):
        return self.filename.encode('utf-8'), self.flag_bits


def test_names_of_a_zip_made_without_the_utf8_flag_read_as_their_writer_meant(tmp_path):
    """Info-ZIP writes a name's UTF-8 bytes without the flag that says so; Python reads them as cp437 (`Bj├╢rn`)."""
    archive = tmp_path / 'class.zip'
    name = MOODLE.format(name='Björn Ødegård', id=10002, file='dlnd_face_generation.ipynb')
    with zipfile.ZipFile(archive, 'w') as zipped:
        zipped.writestr(InfoZipName(name), SOLVED)
        zipped.writestr(MOODLE.format(name='Zoë', id=7, file='x.ipynb'), SOLVED)  # UTF-8, flagged
    with zipfile.ZipFile(archive) as zipped:
        assert [info.flag_bits & lms.UTF8_FLAG for info in zipped.infolist()] == [0, lms.UTF8_FLAG]
        assert zipped.namelist()[0].startswith('Bj├╢rn')
    folder, _, _ = lms.unpack(str(archive), str(tmp_path / 'handins'))
    assert sorted(hand_in.name for hand_in in lms.hand_ins(folder)) == ['Björn Ødegård', 'Zoë']


def test_make_takes_a_class_download_its_output_folder_and_a_learner_to_review_again_with_spaces(first, tmp_path):
    import subprocess
    from conftest import ROOT
    folder = tmp_path / 'Face Generation class'
    shutil.copytree(first[0], folder / 'review out')
    archive = moodle_zip(folder / 'DLND-Face Generation-4821.zip', FIRST_DOWNLOAD)
    out = folder / 'review out'
    done = subprocess.run(['make', '--no-print-directory', 'review', f'HANDINS={archive}', f'OUT={out}',
                           'AGAIN=Ana Sánchez'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert '4 with a notebook; 3 reviewed before and unchanged; 1 to review' in done.stdout, done.stdout
    assert gradebook_rows(out)['Ana Sánchez']['score'] == 8
    (out / 'gradebook.csv').unlink()
    done = subprocess.run(['make', '--no-print-directory', 'gradebook', f'OUT={out}'], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and gradebook_rows(out)['Ana Sánchez']['score'] == 8, done.stderr


@pytest.mark.parametrize('names, said', [
    (['class/ana.ipynb', 'class/../../escape.ipynb'], 'a path outside the folder the zip unpacks to'),
    ([InfoZipName('class/ana.ipynb'), 'class/ana.ipynb'], 'the zip holds a file of this name twice'),
])
def test_a_zip_entry_that_would_write_outside_its_folder_or_twice_is_left_out_and_said(tmp_path, names, said):
    """The entry is one learner's: it is left out and said in their row, and the class is unpacked."""
    archive = tmp_path / 'class.zip'
    with zipfile.ZipFile(archive, 'w') as zipped:
        for name in names:
            zipped.writestr(name, SOLVED)
    folder, _, notes = lms.unpack(str(archive), str(tmp_path / "out"))
    found = {hand_in.key: hand_in for hand_in in lms.hand_ins(folder, {}, notes)}
    assert found['ana'].notebook == 'ana.ipynb', found
    assert any(said in problem for hand_in in found.values() for problem in hand_in.record()['beside']), found
    assert not (tmp_path / 'escape.ipynb').exists()
