"""A class's hand-ins reviewed: a CSV gradebook, a feedback file per learner and a summary, going on where it stopped.

    python -m facegen review --handins FOLDER_OR_ZIP [--jobs N] [--out DIR]   # make review HANDINS=... JOBS=N
    python -m facegen gradebook DIR                                            # the merge alone

A learner is named by the file or folder their hand-in came in: `alice.ipynb`, or a folder `alice/` holding one
notebook anywhere inside (beside its HTML copy and whatever else); where a file and a folder share a name, each is
named in full (`alice.ipynb`, `alice/`). A hand-in is hostile: no link in the folder or the zip is followed (a
link gets a row that says so), and what it wrote reaches the gradebook, the feedback and the terminal inert
(inert.py). Each is reviewed by its own command, the one a
single notebook gets (`python -m facegen review NOTEBOOK --json results/NAME.json`), JOBS at a time; a learner
whose result is already in results/ is not reviewed again, so an interrupted batch goes on where it stopped. What
is not a hand-in (a file that is no notebook, a folder with none or with two) gets a result that says so. The merge
reads results/*.json alone, so results made elsewhere (a cluster's jobs) merge the same way:

    DIR/results/NAME.json    one review (review.result_of)
    DIR/work/NAME/           the hand-in's private folder: its process's output.log, its training runs
    DIR/feedback/NAME.md     the review for the learner, every line with its message
    DIR/gradebook.csv        one row a learner: each rubric line PASS, WARN (passed, with a point to look at) or
                             FAIL, the lines passed, the feedback file
"""
import argparse
import concurrent.futures
import csv
import json
import os
import shlex
import stat
import subprocess
import sys
import zipfile

from . import inert, sandbox
from .review import MODEL_CHECKS, Line, result_of, write_result
from ..notebooks import CHECKOUT

RUBRIC = ('The notebook is there', 'All the unit tests pass',
          *[f'{name} is implemented correctly' for name, _ in MODEL_CHECKS[:-1]],
          'train builds the model with model_inputs, model_loss and model_opt and shows show_generator_output',
          'The hyperparameters are reasonable')
COLUMNS = ('The notebook is there', 'All the unit tests pass', *[name for name, _ in MODEL_CHECKS],
           'The hyperparameters are reasonable')
MAX_UNZIPPED = 4 * 2 ** 30  # what a class's zip may hold, unpacked
IGNORED = ('.ipynb_checkpoints', '__MACOSX', '.DS_Store')


def learners(folder):
    """{learner: the notebook's path} and {learner: why it is not a hand-in}, from a folder of hand-ins; no link
    in it is followed."""
    found, odd = {}, {}
    entries = [entry for entry in sorted(os.listdir(folder)) if entry not in IGNORED and not entry.startswith('.')]
    stems = [entry[:-len('.ipynb')] if entry.endswith('.ipynb') else entry for entry in entries]
    for entry, stem in zip(entries, stems):
        path = os.path.join(folder, entry)
        mode = os.lstat(path).st_mode
        learner = stem if stems.count(stem) == 1 else f'{entry} (folder)' if stat.S_ISDIR(mode) else entry
        if stat.S_ISLNK(mode):
            odd[learner] = (f'{entry} is a symbolic link: the review follows no link in a hand-ins folder; put the '
                            'hand-in itself there')
        elif stat.S_ISDIR(mode):
            notebooks = sorted(os.path.relpath(os.path.join(root, name), path)
                               for root, dirs, files in os.walk(path)
                               for name in files if name.endswith('.ipynb') and not _ignored(root, path))
            links = [name for name in notebooks if os.path.islink(os.path.join(path, name))]
            if links:
                odd[learner] = (f'the folder {entry}/ holds {links[0]}, a symbolic link: the review follows no link '
                                'in a hand-in; ask the learner for the notebook itself')
            elif len(notebooks) == 1:
                found[learner] = os.path.join(path, notebooks[0])
            elif not notebooks:
                odd[learner] = f'the folder {entry}/ holds no notebook (.ipynb): ask the learner for theirs'
            else:
                odd[learner] = (f'the folder {entry}/ holds {len(notebooks)} notebooks ({", ".join(notebooks)}): '
                                'a hand-in is one; ask the learner which')
        elif entry.endswith('.ipynb') and stat.S_ISREG(mode):
            found[learner] = path
        else:
            odd[learner] = f'{entry} is not a notebook (.ipynb) nor a folder holding one'
    return found, odd


def _ignored(root, top):
    return any(part in IGNORED for part in os.path.relpath(root, top).split(os.sep))


def unpack(archive, into):
    """A zip of hand-ins unpacked into a folder (once), its paths kept inside it, its links left out: (the folder
    of hand-ins in it (the zip's single top folder, where it has one), {the links' paths there: their entries})."""
    with zipfile.ZipFile(archive) as zipped:
        # A link in a zip is a file holding its target's path: never made, so never followed
        links = [member.filename for member in zipped.infolist() if stat.S_ISLNK(member.external_attr >> 16)]
        members = [member for member in zipped.infolist() if not member.is_dir() and member.filename not in links]
        size = sum(member.file_size for member in members)
        if size > MAX_UNZIPPED:
            raise ValueError(f'{archive} unpacks to {size / 2 ** 30:.1f} GB, more than {MAX_UNZIPPED / 2 ** 30:.0f} '
                             'GB: is it the class\'s hand-ins?')
        for member in members:
            target = os.path.realpath(os.path.join(into, member.filename))
            if not target.startswith(os.path.realpath(into) + os.sep):
                raise ValueError(f'{archive} holds {member.filename!r}, a path outside the folder it unpacks to: '
                                 'make the zip again from the hand-ins\' folder')
        if not os.path.isdir(into):
            zipped.extractall(into + '.partial', members)
            os.replace(into + '.partial', into)  # whole or not at all
    entries = [entry for entry in os.listdir(into) if entry not in IGNORED]
    wrapped = os.path.join(into, entries[0]) if len(entries) == 1 else None
    folder = wrapped if wrapped and os.path.isdir(wrapped) and learners(wrapped)[0] else into
    top = os.path.relpath(folder, into)
    return folder, {os.path.relpath(link, top): link for link in links}


def link_rows(links, found):
    """{learner: why} for each learner of a zip whose entry is a link, where no notebook of theirs is there."""
    rows = {}
    for path, entry in links.items():
        first = path.replace('\\', '/').split('/')[0]
        learner = first[:-len('.ipynb')] if first.endswith('.ipynb') else first
        if learner not in found and not learner.startswith('.'):
            rows[learner] = (f'{entry} is a symbolic link in the zip: the review follows no link in a hand-in; ask '
                             'the learner for the notebook itself')
    return rows


def review_one(learner, notebook, out, train, limits, data_dir):
    """One hand-in by its own review command; a review that does not finish gets a FAIL result saying so."""
    result_path = os.path.join(out, 'results', f'{learner}.json')
    command = [sys.executable, '-m', 'facegen', 'review', notebook, '--json', result_path, '--quiet',
               '--output-dir', os.path.join(out, 'work', learner), *_limit_arguments(limits)]
    command += ['--train'] if train else []
    command += ['--data-dir', data_dir] if data_dir else []
    # Each step of the hand-in has its limit in the review; this bounds the review itself (loading TensorFlow...).
    whole = limits.check_s * (len(MODEL_CHECKS) + 1) + (2 * limits.train_s if train else 0) + 300
    try:
        done = subprocess.run(command, cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=whole)
        why = f'its review stopped (exit status {done.returncode}: {done.stderr.strip().splitlines()[-1:]})'
    except subprocess.TimeoutExpired:
        why = f'its review did not finish within {whole:g} s'
    if not os.path.isfile(result_path):
        alone = f'make review NOTEBOOK={shlex.quote(notebook)}'
        write_result(result_path, result_of(notebook, [Line('FAIL', 'The notebook is there', f'{why}: review it '
                                                            f'alone ({alone}) to see where it stops')]))
    return learner


def _limit_arguments(limits):
    return [part for field, (option, _) in sandbox.OPTIONS.items() for part in (option, str(getattr(limits, field)))]


def review_class(handins, out, jobs=1, train=False, limits=sandbox.LIMITS, data_dir=None, progress=True):
    """
    Review every hand-in of a folder or zip not reviewed yet, then merge the results
    :return: The gradebook's rows
    """
    for folder in ('results', 'work', 'feedback'):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    folder, links = unpack(handins, os.path.join(out, 'handins')) if zipfile.is_zipfile(handins) else (handins, {})
    found, odd = learners(folder)
    odd.update(link_rows(links, found))
    for learner, why in odd.items():
        if not os.path.isfile(os.path.join(out, 'results', f'{learner}.json')):
            write_result(os.path.join(out, 'results', f'{learner}.json'),
                         result_of(os.path.join(folder, learner), [Line('FAIL', 'The notebook is there', why)]))
    waiting = {learner: notebook for learner, notebook in found.items()
               if not os.path.isfile(os.path.join(out, 'results', f'{learner}.json'))}
    print(f'{len(found)} hand-ins in {handins}' + (f', {len(odd)} ' + ('entry that is' if len(odd) == 1 else
                                                                      'entries that are') + ' not one' if odd else '') +
          (f'; {len(found) - len(waiting)} reviewed before, {len(waiting)} to review' if len(waiting) < len(found)
           else '') + f' ({jobs} at a time)', flush=True)
    note = sandbox.sandbox_note()
    if note:
        print(f'Note: {note}.', flush=True)
    from tqdm import tqdm
    with tqdm(total=len(waiting), unit='hand-in', disable=not progress, file=sys.stdout) as bar, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for done in concurrent.futures.as_completed(
                [pool.submit(review_one, learner, notebook, out, train, limits, data_dir)
                 for learner, notebook in waiting.items()]):
            bar.set_postfix_str(inert.terminal(done.result()))
            bar.update()
    return merge(out)


def merge(out):
    """The gradebook and the feedback files from out/results/*.json; returns the gradebook's rows."""
    rows = []
    os.makedirs(os.path.join(out, 'feedback'), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(out, 'results'))):
        if not name.endswith('.json'):
            continue
        learner = name[:-len('.json')]
        with open(os.path.join(out, 'results', name)) as result_file:
            result = json.load(result_file)
        lines = [Line(**line) for line in result['lines']]
        feedback = os.path.join(out, 'feedback', f'{learner}.md')
        with open(feedback, 'w') as feedback_file:
            feedback_file.write(feedback_markdown(learner, result['notebook'], lines))
        rows.append(gradebook_row(learner, lines, os.path.relpath(feedback, out)))
    with open(os.path.join(out, 'gradebook.csv'), 'w', newline='') as book:
        writer = csv.DictWriter(book, fieldnames=['learner', *COLUMNS, 'code to read', 'passed', 'feedback'],
                                quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows({key: inert.spreadsheet(value) for key, value in row.items()} for row in rows)
    return rows


def gradebook_row(learner, lines, feedback):
    """learner, each rubric line's PASS/WARN/FAIL (blank where the review has no such line), passed/of, feedback."""
    row = {'learner': learner, 'feedback': feedback}
    for rubric, column in zip(RUBRIC, COLUMNS):
        result = next((line.result for line in lines if line.rubric == rubric), '')
        function = column if column in dict(MODEL_CHECKS) else None
        warned = any(line.result == 'WARN' and (line.rubric.startswith(f'{function}:') if function else
                                                rubric == 'The hyperparameters are reasonable' and
                                                line.rubric == 'A hyperparameter to look at') for line in lines)
        row[column] = 'WARN' if result == 'PASS' and warned else result
    row['code to read'] = sum(line.rubric == 'Code to read before trusting this review' for line in lines) or ''
    row['passed'] = f"{sum(row[column] in ('PASS', 'WARN') for column in COLUMNS)}/{len(COLUMNS)}"
    return row


def feedback_markdown(learner, notebook, lines):
    """The review as a learner reads it: every line, with its message, and what the results mean; all the hand-in
    wrote (its name, its messages) escaped."""
    rows = '\n'.join(f'| {line.result} | {inert.markdown(line.rubric)} | {inert.markdown(line.message)} |'
                     for line in lines)
    verdict = all(line.result != 'FAIL' for line in lines)
    return (f'# Review of {inert.markdown(learner)}\'s face generation project\n\n'
            f'Notebook: {inert.markdown(os.path.basename(notebook))}. '
            + ('Every line passes.' if verdict else 'The FAIL lines say what to fix; fix them and hand it in again.')
            + ' WARN lines are choices to look at, REVIEW lines are for your reviewer\'s eyes.\n\n'
            f'| Result | Rubric line | What the review found |\n|---|---|---|\n{rows}\n')


def summary(rows):
    """The gradebook as a table for the terminal."""
    names = [inert.terminal(row['learner']) for row in rows]
    width = max([len('learner')] + [len(name) for name in names])
    head = f'{"learner":<{width}}  passed  failing'
    table = [head, '-' * len(head)]
    for row, name in zip(rows, names):
        failing = [column.split(' is ')[0] for column in COLUMNS if row[column] == 'FAIL']
        table.append(f'{name:<{width}}  {row["passed"]:>6}  {", ".join(failing)}')
    return '\n'.join(table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--handins', required=True, help='a folder of hand-ins, or a zip of one')
    parser.add_argument('--jobs', type=int, default=1, help='hand-ins reviewed at a time (default 1)')
    parser.add_argument('--out', help='where the results, feedback and gradebook go (default: '
                                      'output/review/NAME of the folder or zip)')
    parser.add_argument('--train', action='store_true', help='also train each hand-in for a few minutes')
    parser.add_argument('--data-dir', help='the data folder for training (default: data/)')
    sandbox.add_limit_options(parser)
    args = parser.parse_args(argv)
    if sandbox.unsupported():
        print(f'Not here: {sandbox.unsupported()}.', file=sys.stderr)
        return 2
    if not os.path.exists(args.handins):
        print(f'{args.handins} is not there: give the folder or the zip of the hand-ins (HANDINS=...)',
              file=sys.stderr)
        return 2
    name = os.path.splitext(os.path.basename(os.path.normpath(args.handins)))[0]
    out = os.path.abspath(args.out or os.path.join(CHECKOUT, 'output', 'review', name))
    rows = review_class(os.path.abspath(args.handins), out, args.jobs, args.train, sandbox.limits_from(args),
                        args.data_dir)
    print(f'\n{summary(rows)}\n\nGradebook: {os.path.join(out, "gradebook.csv")}\n'
          f'Feedback for each learner: {os.path.join(out, "feedback")}/')
    return 0


def merge_main(argv=None):
    parser = argparse.ArgumentParser(description='Merge the reviews in DIR/results/*.json into DIR/gradebook.csv '
                                                 'and DIR/feedback/')
    parser.add_argument('out', help='the folder holding results/')
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.out, 'results')):
        print(f'{args.out} has no results/ folder: give the folder the reviews wrote their JSON under', file=sys.stderr)
        return 2
    rows = merge(args.out)
    print(f'{summary(rows)}\n\nGradebook: {os.path.join(args.out, "gradebook.csv")}')
    return 0

