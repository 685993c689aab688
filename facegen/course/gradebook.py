"""A class's reviews as a teacher and an LMS take them: a gradebook (CSV and .xlsx), each learner's feedback (Markdown
and HTML), and grade files Moodle and Canvas import. Made from out/results/*.json alone, so results made elsewhere
(a cluster's jobs) merge the same way.

    gradebook.csv / .xlsx   one row a learner: name, ID, the LMS's entries, the notebook reviewed and the files
                            beside it, the score and its maximum, each rubric line's PASS, WARN (passed, with a
                            choice to look at) or FAIL, the code-to-read count, an empty column for the teacher's
                            mark of the faces, the feedback file
    feedback/KEY.md, .html  the review for the learner, every line with its message
    moodle_grades.csv       Moodle's offline grading worksheet (Identifier "Participant N", Grade, Feedback comments)
    canvas_grades.csv       Canvas's gradebook import (Student, ID, SIS User ID, SIS Login ID, Section, the grade)

The score counts the rubric lines a review decides, one point each: the notebook is there, the six functions, the
hyperparameters (8). "All the unit tests pass" is shown but not counted (it repeats the six functions' lines), and
the faces are the teacher's to mark. Everything a hand-in wrote reaches these files inert (inert.py).
"""
import contextlib
import csv
import html
import json
import os

from . import inert
from .review import MODEL_CHECKS, Line

FUNCTIONS = [name for name, _ in MODEL_CHECKS]
RUBRIC = {'The notebook is there': 'The notebook is there', 'All the unit tests pass': 'All the unit tests pass',
          **{f'{name} is implemented correctly': name for name in FUNCTIONS[:-1]},
          'train builds the model with model_inputs, model_loss and model_opt and shows show_generator_output': 'train',
          'The hyperparameters are reasonable': 'The hyperparameters are reasonable'}
COLUMNS = tuple(RUBRIC.values())  # each rubric line's column
SCORED = tuple(column for column in COLUMNS if column != 'All the unit tests pass')
FACES = "faces (teacher's mark)"
HEADER = ('learner', 'ID', 'LMS entry', 'notebook reviewed', 'files beside it', 'score', 'out of', *COLUMNS,
          'code to read', FACES, 'feedback')
ASSIGNMENT = 'Face Generation'  # the grade's column in Canvas's import: rename it to the assignment's own


def merge(out):
    """The gradebook, feedback and import files from out/results/*.json, the marks a teacher typed into the faces'
    column before kept; returns the gradebook's rows."""
    rows, marks = [], teachers_marks(out)
    os.makedirs(os.path.join(out, 'feedback'), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(out, 'results'))):
        if not name.endswith('.json'):
            continue
        key = name[:-len('.json')]
        learner, lines = _read_result(os.path.join(out, 'results', name), key)
        feedback = os.path.join('feedback', f'{key}.html')
        _write(os.path.join(out, 'feedback', f'{key}.md'), feedback_markdown(learner, lines))
        _write(os.path.join(out, feedback), feedback_html(learner, lines))
        rows.append(row_of(learner, lines, feedback))
        rows[-1][FACES] = marks.get(feedback, '')
    write_csv(os.path.join(out, 'gradebook.csv'), HEADER, rows, bom=True)
    write_xlsx(os.path.join(out, 'gradebook.xlsx'), rows)
    write_csv(os.path.join(out, 'moodle_grades.csv'), MOODLE_HEADER, moodle_rows(rows))
    write_csv(os.path.join(out, 'canvas_grades.csv'), CANVAS_HEADER, canvas_rows(rows))
    return rows


def _read_result(path, key):
    """(the learner, the review's lines) of one result: one that cannot be read is that learner's FAIL alone."""
    learner = {'name': key, 'id': '', 'lms': '', 'entries': [], 'notebook': '', 'beside': []}
    try:
        with open(path, encoding='utf-8') as result_file:
            result = json.load(result_file)
        learner.update({'notebook': result['notebook'], **result.get('learner', {})})
        return inert.clean(learner), [Line(**line) for line in result['lines']]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        return inert.clean(learner), [Line('FAIL', 'The notebook is there', f'its review\'s result {path} cannot '
                                      f'be read ({type(error).__name__}): review it again (--again "{key}")')]


def teachers_marks(out):
    """{feedback file: mark} of the faces' column of the gradebook there (its CSV, then its workbook for the rows
    the CSV leaves blank), so that merging again (a second download) never loses what a teacher typed."""
    marks = {}
    with contextlib.suppress(OSError, csv.Error, UnicodeError):
        with open(os.path.join(out, 'gradebook.csv'), newline='', encoding='utf-8-sig') as book:
            for row in csv.DictReader(book):
                _keep_mark(marks, row.get('feedback'), row.get(FACES))
    with contextlib.suppress(Exception):  # a workbook a spreadsheet saved otherwise than expected: its CSV stands
        from openpyxl import load_workbook
        rows = load_workbook(os.path.join(out, 'gradebook.xlsx'), read_only=True).active.iter_rows(values_only=True)
        header = list(next(rows))
        for values in rows:
            row = dict(zip(header, values))
            _keep_mark(marks, row.get('feedback'), row.get(FACES))
    return marks


def _keep_mark(marks, feedback, mark):
    """Keep a row's mark under its feedback file, which names the learner's key: one a row, stable across
    downloads (an LMS's ID in it), never a display name two learners can share."""
    if feedback and mark is not None and str(mark).strip():
        marks.setdefault(str(feedback), mark if isinstance(mark, (int, float)) else str(mark).strip())


def _write(path, text):
    with open(path, 'w', encoding='utf-8') as out:
        out.write(text)


def row_of(learner, lines, feedback):
    """One learner's row: who, what was reviewed, the score, each rubric line (blank where the review has none)."""
    row = {'learner': learner['name'], 'ID': learner['id'], 'LMS entry': '; '.join(learner['entries']),
           'notebook reviewed': learner['notebook'] or '', 'files beside it': '; '.join(learner['beside']),
           'feedback': feedback, FACES: '', 'lms': learner['lms']}
    for rubric, column in RUBRIC.items():
        result = next((line.result for line in lines if line.rubric == rubric), '')
        row[column] = 'WARN' if result == 'PASS' and _warned(column, lines) else result
    row['code to read'] = sum(line.rubric == 'Code to read before trusting this review' for line in lines)
    row['score'] = sum(row[column] in ('PASS', 'WARN') for column in SCORED)
    row['out of'] = len(SCORED)
    row['failing'] = [line for line in lines if line.result == 'FAIL' and line.rubric != 'All the unit tests pass']
    return row


def _warned(column, lines):
    """Whether a passing line has a WARN of its own: a function's style, or a hyperparameter to look at."""
    if column in FUNCTIONS:
        return any(line.result == 'WARN' and line.rubric.startswith(f'{column}:') for line in lines)
    return column == 'The hyperparameters are reasonable' and \
        any(line.result == 'WARN' and line.rubric == 'A hyperparameter to look at' for line in lines)


def write_csv(path, header, rows, bom=False):
    """A CSV a spreadsheet opens as it was meant: every text quoted and inert, numbers as numbers; UTF-8, with the
    byte-order mark spreadsheets need to read it as UTF-8 where bom."""
    with open(path, 'w', newline='', encoding='utf-8-sig' if bom else 'utf-8') as book:
        writer = csv.writer(book, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(header)
        writer.writerows([inert.spreadsheet(row.get(column, '')) for column in header] for row in rows)


def write_xlsx(path, rows):
    """The gradebook as a workbook: the same columns, text stored as text (never a formula), numbers as numbers."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    book = Workbook()
    sheet = book.active
    sheet.title = 'gradebook'
    sheet.append(HEADER)
    for number, row in enumerate(rows, start=2):
        for column, name in enumerate(HEADER, start=1):
            value = row.get(name, '')
            cell = sheet.cell(number, column, value if isinstance(value, (int, float)) else
                              ILLEGAL_CHARACTERS_RE.sub('', inert.terminal(value)))
            if isinstance(value, str):
                cell.data_type = 's'  # openpyxl takes text beginning with '=' for a formula
    sheet.freeze_panes = 'B2'
    book.save(path + '.partial')
    os.replace(path + '.partial', path)


MOODLE_HEADER = ('Identifier', 'Full name', 'Grade', 'Maximum grade', 'Feedback comments')
CANVAS_HEADER = ('Student', 'ID', 'SIS User ID', 'SIS Login ID', 'Section', ASSIGNMENT)


def moodle_rows(rows):
    """Moodle's offline grading worksheet, for the learners whose entries Moodle named (its participant IDs)."""
    return [{'Identifier': f'Participant {row["ID"]}', 'Full name': row['learner'], 'Grade': row['score'],
             'Maximum grade': row['out of'], 'Feedback comments': comment(row)}
            for row in rows if row['lms'] == 'Moodle']


def canvas_rows(rows):
    """Canvas's gradebook import, for the learners whose entries Canvas named (its user IDs); the first row gives
    the points possible, as Canvas's own export does."""
    return [{'Student': 'Points Possible', ASSIGNMENT: len(SCORED)}] + [
        {'Student': row['learner'], 'ID': row['ID'], ASSIGNMENT: row['score']}
        for row in rows if row['lms'] == 'Canvas']


def comment(row):
    """A line for the LMS's feedback comment: the score and what to fix."""
    failing = ', '.join(RUBRIC.get(line.rubric, line.rubric) for line in row['failing'])
    return f'{row["score"]}/{row["out of"]} rubric lines pass' + (f'; to fix: {failing}' if failing else '') + \
        '. The feedback file says why.'


def feedback_markdown(learner, lines):
    """The review as a learner reads it: every line, with its message, and what the results mean; all the hand-in
    wrote (its name, its messages) escaped."""
    rows = '\n'.join(f'| {line.result} | {inert.markdown(line.rubric)} | {inert.markdown(line.message)} |'
                     for line in lines)
    verdict = all(line.result != 'FAIL' for line in lines)
    notebook = learner['notebook']
    return (f'# Review of the face generation project of {inert.markdown(learner["name"])}\n\n'
            + (f'Notebook: {inert.markdown(os.path.basename(notebook))}. ' if notebook else '')
            + ('Every line passes.' if verdict else 'The FAIL lines say what to fix; fix them and hand it in again.')
            + ' WARN lines are choices to look at, REVIEW lines are for your reviewer\'s eyes.\n\n'
            f'| Result | Rubric line | What the review found |\n|---|---|---|\n{rows}\n')


def feedback_html(learner, lines):
    """The feedback as a page: the Markdown rendered by markdown-it (raw HTML off, so that nothing of the hand-in
    becomes markup; its links checked), in a page of its own."""
    from markdown_it import MarkdownIt
    body = MarkdownIt('commonmark', {'html': False}).enable('table').render(feedback_markdown(learner, lines))
    title = html.escape(inert.terminal(f'Review of the face generation project of {learner["name"]}'))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f'<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n')


STYLE = ('body { font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.4 } '
         'table { border-collapse: collapse } td, th { border: 1px solid #ccc; padding: .3em .6em; '
         'vertical-align: top; text-align: left }')


def summary(rows):
    """The gradebook as a table for the terminal."""
    names = [inert.terminal(row['learner']) for row in rows]
    width = max([len('learner')] + [len(name) for name in names])
    head = f'{"learner":<{width}}  score  failing'
    table = [head, '-' * len(head)]
    for row, name in zip(rows, names):
        failing = [column for column in COLUMNS if row[column] == 'FAIL' and column != 'All the unit tests pass']
        table.append(f'{name:<{width}}  {row["score"]:>2}/{row["out of"]}   {", ".join(failing)}')
    return '\n'.join(table)
