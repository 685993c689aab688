"""A class's hand-ins reviewed from a zip or a folder: a gradebook row and a feedback file per learner, odd entries
named, and a batch that goes on where it stopped."""
import csv
import os
import shutil
import zipfile

import nbformat
import pytest

from conftest import solution_without_markers
from facegen.course import batch, exercise

EXERCISE_LEARNERS = ('amir', 'beth', 'chen', 'dara', 'eli', 'fay', 'gus')


@pytest.fixture(scope='module')
def handins(tmp_path_factory):
    """Ten hand-ins as a class hands them in (seven exercises not written yet, one finished, one whose process
    exits as its cells load, one that is no notebook), and two entries that are no hand-in."""
    folder = tmp_path_factory.mktemp('class') / 'face-generation'
    folder.mkdir()
    for learner in EXERCISE_LEARNERS:
        shutil.copy(exercise.EXERCISE, folder / f'{learner}.ipynb')
    nbformat.write(solution_without_markers(), str(folder / 'hana.ipynb'))
    exits = solution_without_markers()
    exits.cells.insert(1, nbformat.v4.new_code_cell('import os\nos._exit(0)\ndef model_inputs(): pass'))
    (folder / 'ivan' / 'project').mkdir(parents=True)
    nbformat.write(exits, str(folder / 'ivan' / 'project' / 'dlnd_face_generation.ipynb'))
    (folder / 'ivan' / 'dlnd_face_generation.html').write_text('<html></html>')
    (folder / 'jo.ipynb').write_text('<html>saved from the browser</html>')
    (folder / 'notes.txt').write_text('late hand-ins follow')
    (folder / 'kim').mkdir()
    for name in ('first.ipynb', 'second.ipynb'):
        shutil.copy(exercise.EXERCISE, folder / 'kim' / name)
    archive = folder.parent / 'face-generation.zip'
    with zipfile.ZipFile(archive, 'w') as zipped:
        for root, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                zipped.write(path, os.path.relpath(path, folder.parent))
    return folder, archive


@pytest.fixture(scope='module')
def reviewed(handins, tmp_path_factory):
    out = tmp_path_factory.mktemp('review')
    code = batch.main(['--handins', str(handins[1]), '--jobs', '2', '--out', str(out), '--check-seconds', '60'])
    return out, code


def gradebook(out):
    with open(out / 'gradebook.csv', newline='') as book:
        return {row['learner']: row for row in csv.DictReader(book)}


def test_a_zip_of_a_class_gets_one_gradebook_row_and_one_feedback_file_a_learner(reviewed, capsys):
    out, code = reviewed
    rows = gradebook(out)
    assert code == 0
    assert sorted(rows) == sorted([*EXERCISE_LEARNERS, 'hana', 'ivan', 'jo', 'kim', 'notes.txt'])
    assert rows['hana']['passed'] == '9/9' and set(rows['hana'][c] for c in batch.COLUMNS) == {'PASS'}
    for learner in EXERCISE_LEARNERS:
        row = rows[learner]
        assert row['passed'] == '1/9' and row['The notebook is there'] == 'PASS' and row['model_inputs'] == 'FAIL'
    assert rows['ivan']['The notebook is there'] == 'FAIL' and rows['ivan']['model_inputs'] == 'FAIL'
    assert rows['jo']['The notebook is there'] == 'FAIL'
    for learner in ('notes.txt', 'kim'):
        assert rows[learner]['The notebook is there'] == 'FAIL' and rows[learner]['model_inputs'] == ''
    feedback = {learner: (out / rows[learner]['feedback']).read_text() for learner in rows}
    assert '| FAIL | model_inputs is implemented correctly | model_inputs is not implemented yet' in feedback['amir']
    assert 'Every line passes.' in feedback['hana']
    assert 'its process ended (exit status 0)' in feedback['ivan']
    assert 'is not a Jupyter notebook' in feedback['jo']
    assert 'holds 2 notebooks (first.ipynb, second.ipynb)' in feedback['kim']
    assert 'notes.txt is not a notebook' in feedback['notes.txt']


def test_an_interrupted_batch_goes_on_where_it_stopped_and_a_folder_reviews_as_its_zip(reviewed, handins, capsys):
    out, _ = reviewed
    redo = ('beth', 'hana')
    kept = {path.name: path.stat().st_mtime_ns for path in (out / 'results').iterdir()
            if path.stem not in redo}
    for learner in redo:  # as a batch stopped before these, one of them half written
        os.remove(out / 'results' / f'{learner}.json')
    (out / 'results' / 'hana.json.partial').write_text('{"notebook": ')
    assert batch.main(['--handins', str(handins[0]), '--out', str(out), '--check-seconds', '60']) == 0
    printed = capsys.readouterr().out
    assert '10 hand-ins in' in printed and '8 reviewed before, 2 to review' in printed
    assert {path.name: path.stat().st_mtime_ns for path in (out / 'results').iterdir()
            if path.stem not in redo and path.suffix == '.json'} == kept
    rows = gradebook(out)
    assert rows['hana']['passed'] == '9/9' and rows['beth']['passed'] == '1/9' and len(rows) == 12


def test_the_merge_alone_makes_the_gradebook_from_results_made_elsewhere(reviewed, tmp_path):
    out, _ = reviewed
    shutil.copytree(out / 'results', tmp_path / 'results')
    assert batch.merge_main([str(tmp_path)]) == 0
    assert gradebook(tmp_path) == {learner: {**row, 'feedback': row['feedback']} for learner, row in
                                   gradebook(out).items()}
    assert sorted(os.listdir(tmp_path / 'feedback')) == sorted(os.listdir(out / 'feedback'))
