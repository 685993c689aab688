"""The review behind walls: the hand-in's graph runs only in the judge's sandbox and only of allowed operation types;
no claim of the hand-in's makes a PASS; nothing it leaves is followed; what it wrote reaches the teacher inert; a
function that hangs costs its time limit once."""
import csv
import dataclasses
import io
import os
import sys
import time

import nbformat
import pytest

from conftest import solution_without_markers
from test_review_isolation import LINE, needs_the_sandbox, verdicts, with_body_start, with_bodies, write
from facegen.course import gradebook, graph_ops, inert, judging, lms, review, sandbox, scan
from facegen.course.review import Line

SMALL = sandbox.Limits(check_s=20, memory_gb=8, processes=256, file_mb=64, tmp_mb=64)
# Operation types known to reach outside a session, end or block the process: none may be allowed.
HOSTILE = ('Abort', 'PyFunc', 'EagerPyFunc', 'ReadFile', 'WriteFile', 'MatchingFiles', 'ImmutableConst',
           'Print', 'PrintV2', 'DebugIdentityV2', 'TextLineDataset', 'FixedLengthRecordReaderV2', 'Barrier',
           'FIFOQueueV2', 'QueueDequeueV2', 'WholeFileReaderV2', 'DeleteSessionTensor', 'While', 'Enter',
           'NextIteration', 'PartitionedCall', 'StatefulPartitionedCall', 'CollectiveReduceV2', '_Send', '_Recv')


def registered_op_types():
    """Every operation type TensorFlow's registry holds here."""
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session
    ops = op_def_pb2.OpList()
    ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    return {op.name for op in ops.op}


def made_event(tf, op_types):
    """A `made` event of one node of each type, inputs left out (the allow-list is read before any import)."""
    from facegen.course import evidence
    nodes = tf.GraphDef()
    nodes.node.extend(tf.NodeDef(name=f'node_{index}', op=op) for index, op in enumerate(op_types))
    return {'kind': 'made', 'nodes': evidence.proto_text(nodes), 'collections': {}}


def test_no_operation_type_off_the_allow_list_reaches_a_session_of_the_judge():
    """TensorFlow's whole registry: each type not allowed fails the function that made it before anything of its
    graph is imported, or (a Saver's) is left out with what depends on it."""
    import tensorflow.compat.v1 as tf
    from facegen.course import judge
    registered = registered_op_types()
    assert len(registered) > 1000 and graph_ops.ALLOWED | graph_ops.DROPPED <= registered, 'names TensorFlow knows'
    assert not set(HOSTILE) & graph_ops.ALLOWED
    replay = judge.Replay([], tf, {'functions': {}, 'names': []}, 'ended')
    with tf.Graph().as_default():
        for op in sorted(registered - graph_ops.ALLOWED - graph_ops.DROPPED):
            before = len(tf.get_default_graph().get_operations())
            with pytest.raises(graph_ops.Refused, match=rf'generator builds operations the review does not run: '
                                                        rf'{op}\. Build'):
                replay.add(made_event(tf, [op]), 'generator')
            assert len(tf.get_default_graph().get_operations()) == before, op
        dropped = sorted(graph_ops.DROPPED)
        replay.add(made_event(tf, dropped), 'train')
        assert not tf.get_default_graph().get_operations() and set(replay.dropped.values()) == graph_ops.DROPPED
        for op, kind in (('MergeSummary', r'a TensorBoard summary \(tf.summary\)'),
                         ('SaveV2', r"a tf.train.Saver's save or restore")):
            with pytest.raises(judge.Dropped, match=rf'^node_{dropped.index(op)} is or depends on {kind} \({op}\), '
                                                    r'which the review leaves out unrun'):
                replay.operation(f'node_{dropped.index(op)}')


# Written here in styles real answers use (not the solution's): resize-convolution, dropout, Glorot and truncated
# normal initializers, RMSProp and momentum, tf.cond on is_train, reduce_sum losses with random smoothed labels.
OTHER_STYLE = {
'generator': '''
    with tf.variable_scope('generator', reuse=not is_train):
        init = tf.glorot_uniform_initializer()
        x = tf.layers.dense(z, 7 * 7 * 128, kernel_initializer=init)
        x = tf.reshape(x, [-1, 7, 7, 128])
        x = tf.nn.relu(tf.layers.batch_normalization(x, training=is_train))
        x = tf.image.resize_nearest_neighbor(x, (14, 14))
        x = tf.layers.conv2d(x, 64, 3, padding='same', kernel_initializer=tf.truncated_normal_initializer(stddev=0.02))
        x = tf.nn.elu(tf.layers.batch_normalization(x, training=is_train))
        x = tf.layers.dropout(x, rate=0.1, training=is_train)
        x = tf.image.resize_bilinear(x, (28, 28))
        logits = tf.layers.conv2d(x, out_channel_dim, 3, padding='same')
        return tf.tanh(logits)
''',
'model_loss': '''
    fake = generator(input_z, out_channel_dim)
    real_out, real_logits = discriminator(input_real)
    fake_out, fake_logits = discriminator(fake, reuse=True)
    smooth = tf.random_uniform(tf.shape(real_logits), 0.9, 1.0)
    d_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=real_logits, labels=smooth)) + \\
        tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=fake_logits, labels=tf.zeros_like(fake_out)))
    g_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=fake_logits, labels=tf.ones_like(fake_out)))
    return d_loss, g_loss
''',
'model_opt': '''
    variables = tf.trainable_variables()
    d_vars = [v for v in variables if v.name.startswith('discriminator')]
    g_vars = [v for v in variables if v.name.startswith('generator')]
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        d_train_opt = tf.train.RMSPropOptimizer(learning_rate).minimize(d_loss, var_list=d_vars)
        g_train_opt = tf.train.MomentumOptimizer(learning_rate, beta1).minimize(g_loss, var_list=g_vars)
    return d_train_opt, g_train_opt
''',
}


def test_a_hand_in_of_other_allowed_styles_passes_every_function_line(tmp_path):
    found = verdicts(review.review(write(tmp_path, with_bodies(solution_without_markers(), OTHER_STYLE))))
    assert all(found[line] == ('PASS', '') for line in LINE.values()), found


@needs_the_sandbox
def test_a_graph_of_a_type_off_the_list_fails_its_function_naming_it_and_the_teacher_is_untouched(tmp_path):
    """Two ops that would end the teacher's process with status 0 and read a root-only file: each a FAIL naming it;
    and a terabyte asked of allowed ops: a FAIL, the review goes on."""
    secret = tmp_path / 'secret.txt'
    secret.write_text('the teacher secret')
    secret.chmod(0o600)
    nb = with_body_start(solution_without_markers(), 'generator', f"""
from tensorflow.python.ops import gen_io_ops
z = z + 0.0 * tf.cast(tf.strings.length(gen_io_ops.read_file({str(secret)!r})), tf.float32)
""")
    with_body_start(nb, 'discriminator', "tf.add_to_collection('update_ops', tf.raw_ops.Abort(error_msg='', "
                                         "exit_without_error=True))")
    # Allowed types, unbounded memory: 1 TB asked of the judge, which has limits of its own
    cell = next(c for c in nb.cells if 'def model_loss(' in c.source)
    terabyte = 'tf.fill(tf.stack([2 ** 16, 2 ** 16, tf.cast(d_loss * 0, tf.int32) + 64]), 1.0)'  # sized when run
    cell.source = cell.source.replace('\n    return d_loss, g_loss',
                                      f'\n    return d_loss + 0 * tf.reduce_sum({terabyte}), g_loss')
    lines = review.review(write(tmp_path, nb), limits=SMALL)
    found = verdicts(lines)
    assert found[LINE['generator']][0] == 'FAIL' and 'generator builds operations the review does not run: ReadFile' \
        in found[LINE['generator']][1]
    assert found[LINE['discriminator']][0] == 'FAIL' and 'Abort' in found[LINE['discriminator']][1]
    assert found[LINE['model_loss']][0] == 'FAIL' and 'OOM' in found[LINE['model_loss']][1], found[LINE['model_loss']]
    assert not any('the teacher secret' in line.message for line in lines)


class FakeJudge(judging.Judge):
    """A judge's process that misbehaves as `script` says (the descriptor of its answers is `fd`), given 3 s an
    answer."""
    script = ''
    before_ready = ''  # what it does before it says it is ready

    def __init__(self, limits, log_path):
        super().__init__(dataclasses.replace(limits, check_s=3), log_path)

    def start(self):
        import subprocess
        read_end, write_end = os.pipe()
        ready = f'{self.before_ready}\nimport os\nos.write(fd, {judging.READY!r})\n'  # as the judge says first
        process = subprocess.Popen([sys.executable, '-c', f'fd = {write_end}\n{ready}{self.script}'],
                                   pass_fds=(write_end,), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   start_new_session=True)
        self.started = sandbox.Started(process, None, open(os.devnull, 'ab'))
        os.close(write_end)
        import queue
        import threading
        self.answers = queue.Queue()
        threading.Thread(target=self._read, args=(os.fdopen(read_end, 'rb'), self.answers), daemon=True).start()


@pytest.mark.parametrize('script, why', [
    ('import os; os._exit(0)', r'its process ended \(exit status 0\)'),
    ('import time; time.sleep(600)', r'it ran past its time limit \(3 s\)'),
    ('import os; os.write(fd, b"Tests Passed\\n"); import time; time.sleep(600)', 'its answer was not one'),
    ('import os, json, sys\nfor line in sys.stdin:\n    os.write(fd, json.dumps({"check": "test_nothing", "function": '
     '"model_inputs", "failure": None, "warnings": []}).encode() + b"\\n")', 'its answer was not one'),
    ('import os; os.write(fd, b"x" * 2 ** 20)', 'its answer was not one'),
])
def test_a_judge_that_dies_hangs_or_answers_garbage_leaves_each_function_a_fail_saying_it_could_not_be_judged(
        tmp_path, monkeypatch, script, why):
    """The last but one answers as if another check passed: an answer is to the request asked, or none."""
    monkeypatch.setattr(FakeJudge, 'script', script)
    monkeypatch.setattr(judging, 'Judge', FakeJudge)
    found = verdicts(review.review(write(tmp_path, solution_without_markers()), limits=SMALL))
    for name in ('model_inputs', 'discriminator', 'model_opt', 'train'):
        result, message = found[LINE[name]]
        assert result == 'FAIL' and message.startswith(f'{name} could not be judged: the judge '), (name, message)
        assert __import__('re').search(why, message), message
    assert found['All the unit tests pass'][0] == 'FAIL'


def test_a_judge_started_again_hears_only_its_own_process(tmp_path, monkeypatch):
    """The first judge's reader meets the end of its killed process after the second judge started: that end is
    the first's, never read as the second's (which says it is ready a second later)."""
    monkeypatch.setattr(FakeJudge, 'script', 'import time; time.sleep(600)')
    monkeypatch.setattr(FakeJudge, 'before_ready', 'import time; time.sleep(1)')
    read_lines = sandbox.read_lines

    def late(stream, *limits):  # a busy machine: the reader meets the end of its process late
        yield from read_lines(stream, *limits)
        time.sleep(0.5)
    monkeypatch.setattr(sandbox, 'read_lines', late)
    judge = FakeJudge(SMALL, str(tmp_path / 'judge.log'))
    try:
        judge.wait_until_ready()
        judge.close()
        judge.start()
        judge.wait_until_ready()
    finally:
        judge.close()


@needs_the_sandbox
def test_claims_the_hand_in_writes_about_its_calls_never_make_a_pass(tmp_path):
    """A discriminator outside tf.variable_scope that claims the call, and one optimizer for every variable that
    claims tf.trainable_variables(): both written to the evidence by the hand-in itself."""
    nb = with_bodies(solution_without_markers(), {'discriminator': """
    import os, sys, json
    fd = int(sys.argv[sys.argv.index('--evidence-fd') + 1])
    os.write(fd, json.dumps({'kind': 'observed', 'attribute': 'variable_scope', 'args': {'tuple': ['discriminator']},
                             'kwargs': {'dict': [['reuse', reuse]]}}).encode() + b'\\n')
    with tf.name_scope('d'):
        x = tf.layers.dense(tf.layers.flatten(images), 1, name='discriminator_dense')
    return tf.sigmoid(x), x
""", 'model_opt': """
    import os, sys, json
    fd = int(sys.argv[sys.argv.index('--evidence-fd') + 1])
    os.write(fd, json.dumps({'kind': 'observed', 'attribute': 'trainable_variables', 'args': {'tuple': []},
                             'kwargs': {'dict': []}}).encode() + b'\\n')
    weights = [v for v in tf.global_variables() if 'moving' not in v.name]
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return (tf.train.AdamOptimizer(learning_rate, beta1).minimize(d_loss, var_list=weights),
                tf.train.AdamOptimizer(learning_rate, beta1).minimize(g_loss, var_list=weights))
"""})
    lines = review.review(write(tmp_path, nb), limits=SMALL)
    found = verdicts(lines)
    assert found[LINE['discriminator']][0] == 'FAIL'
    assert "says discriminator called tf.variable_scope('discriminator'), but no operation it made carries that " \
           'name' in found[LINE['discriminator']][1]
    assert found[LINE['model_opt']][0] == 'FAIL' and 'expected to update every discriminator weight and no other' \
        in found[LINE['model_opt']][1]
    warned = [line.message for line in lines if line.rubric == 'Code to read before trusting this review']
    assert sum('os.write: file descriptors' in message for message in warned) == 2, warned


def test_a_model_opt_of_other_variables_that_trains_the_same_passes_with_a_warning_in_the_review(tmp_path):
    opt = {'model_opt': '''
    weights = [v for v in tf.global_variables() if 'moving' not in v.name]
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return (tf.train.AdamOptimizer(learning_rate, beta1).minimize(
                    d_loss, var_list=[v for v in weights if v.name.startswith('discriminator')]),
                tf.train.AdamOptimizer(learning_rate, beta1).minimize(
                    g_loss, var_list=[v for v in weights if v.name.startswith('generator')]))
'''}
    lines = review.review(write(tmp_path, with_bodies(solution_without_markers(), opt)))
    assert verdicts(lines)[LINE['model_opt']] == ('PASS', '')
    assert any(line.result == 'WARN' and 'without tf.trainable_variables()' in line.message for line in lines)


@needs_the_sandbox
def test_a_function_that_runs_past_its_limit_is_not_called_again(tmp_path):
    limits = sandbox.Limits(check_s=10, memory_gb=8, processes=256, file_mb=64, tmp_mb=64)
    nb = with_body_start(solution_without_markers(), 'generator', 'sum(range(10 ** 15))')  # one C call
    start = time.monotonic()
    found = verdicts(review.review(write(tmp_path, nb), limits=limits))
    took = time.monotonic() - start
    assert 'ran past its time limit (10 s)' in found[LINE['generator']][1]
    for name in ('model_loss', 'train'):
        assert found[LINE[name]][0] == 'FAIL' and \
            'not checked: generator ran past its time limit (10 s)' in found[LINE[name]][1], found[LINE[name]]
    assert found[LINE['model_opt']] == ('PASS', '')
    assert took < 10 * 2 + 40, f'{took:.0f} s: the limit was spent more than once'


@needs_the_sandbox
def test_links_a_hand_in_leaves_in_its_folder_are_never_followed(tmp_path):
    """A first review whose hand-in leaves links where the review writes or reads next (its notebook's name, its
    runs): the second review replaces the link, writes nowhere else, and scores nothing through it."""
    teacher = tmp_path / 'teacher.txt'
    teacher.write_text('kept')
    work = tmp_path / 'work'
    nb = with_body_start(solution_without_markers(), 'model_inputs', f'''
import os
for name, target in (('dlnd_face_generation.ipynb', {str(teacher)!r}), ('output.log', {str(teacher)!r}),
                     ('runs', '/')):
    if not os.path.islink(name):
        os.remove(name) if os.path.isfile(name) else None
        os.symlink(target, name)
''')
    path = write(tmp_path, nb)
    review.review(path, output_dir=str(work), limits=SMALL)
    copy = work / sandbox.HANDIN_FOLDER / 'dlnd_face_generation.ipynb'
    assert os.path.islink(copy), 'the hand-in left its link'
    review.copy_in(path, str(work / sandbox.HANDIN_FOLDER))  # as the second review does first
    assert not os.path.islink(copy) and copy.read_bytes() == open(path, 'rb').read()
    os.remove(copy)
    (copy / 'inside').mkdir(parents=True)  # a folder at the notebook's name, with a link to the teacher's file in it
    os.symlink(teacher, copy / 'inside' / 'link')
    review.copy_in(path, str(work / sandbox.HANDIN_FOLDER))
    assert copy.is_file() and teacher.read_text() == 'kept'
    review.review(path, output_dir=str(work), limits=SMALL)
    assert teacher.read_text() == 'kept'
    assert (work / 'output.log').is_file() and not os.path.islink(work / 'output.log')
    lines = review._training_lines([], str(work / sandbox.HANDIN_FOLDER), str(tmp_path), 10, 10)
    assert [line.result for line in lines] == ['FAIL', 'FAIL'] and "holds a link (" in lines[0].message


def test_a_child_s_line_is_read_no_further_than_its_limit():
    endless = io.BytesIO(b'x' * (8 * 2 ** 20))
    assert list(sandbox.read_lines(endless, 2 ** 20, 2 ** 30)) == [None]
    assert endless.tell() <= 2 ** 20 + 1
    many = io.BytesIO(b'{}\n' * 1000)
    assert list(sandbox.read_lines(many, 100, 300)) == [b'{}\n'] * 100 + [None]


@needs_the_sandbox
def test_a_flood_of_evidence_ends_its_step_not_the_review(tmp_path):
    """More events than any review writes (the solution's: 144): the step fails, the others keep their lines."""
    nb = with_body_start(solution_without_markers(), 'model_inputs', """
import os, sys
fd = int(sys.argv[sys.argv.index('--evidence-fd') + 1])
os.write(fd, b'{"kind": "stop"}\\n' * 30000)
""")
    found = verdicts(review.review(write(tmp_path, nb), limits=SMALL))
    assert found[LINE['model_inputs']][0] == 'FAIL' and 'its evidence stopped being readable' in \
        found[LINE['model_inputs']][1]
    assert found[LINE['discriminator']] == ('PASS', '') and found[LINE['generator']] == ('PASS', '')


def test_a_hand_ins_folder_with_links_gets_a_row_for_each_learner_and_follows_none(tmp_path):
    folder = tmp_path / 'handins'
    folder.mkdir()
    nbformat.write(solution_without_markers(), str(folder / 'alice.ipynb'))
    (folder / 'alice').mkdir()
    nbformat.write(solution_without_markers(), str(folder / 'alice' / 'dlnd_face_generation.ipynb'))
    os.symlink('/work', folder / 'mallory.ipynb')
    (folder / 'eve').mkdir()
    os.symlink(str(folder / 'alice.ipynb'), folder / 'eve' / 'dlnd_face_generation.ipynb')
    os.symlink('/etc', folder / 'eve' / 'etc')
    found = {hand_in.key: hand_in for hand_in in lms.hand_ins(str(folder))}
    assert sorted(found) == ['alice', 'eve', 'mallory']
    assert found['alice'].notebook == os.path.join('alice', 'dlnd_face_generation.ipynb'), 'the course\'s name'
    assert sorted(found['alice'].files) == ['alice.ipynb', os.path.join('alice', 'dlnd_face_generation.ipynb')]
    assert found['mallory'].notebook is None and found['mallory'].why.startswith(
        'mallory.ipynb is a symbolic link: the review follows no link')
    assert found['eve'].notebook is None and found['eve'].links == [os.path.join('eve', 'dlnd_face_generation.ipynb'),
                                                                    os.path.join('eve', 'etc')]


def test_a_zip_s_link_entries_are_never_made_and_get_a_row(tmp_path):
    import stat
    import zipfile
    archive = tmp_path / 'class.zip'
    with zipfile.ZipFile(archive, 'w') as zipped:
        zipped.writestr('class/alice.ipynb', nbformat.writes(solution_without_markers()))
        for name, target in (('class/mallory.ipynb', '/etc/shadow'), ('class/trudy/dlnd_face_generation.ipynb',
                                                                      '../../../dlnd_face_generation.ipynb')):
            link = zipfile.ZipInfo(name)
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(link, target)
    folder, links, _ = lms.unpack(str(archive), str(tmp_path / "handins"))
    assert not any(os.path.islink(os.path.join(root, name)) or name != 'alice.ipynb'
                   for root, _, files in os.walk(tmp_path / 'handins') for name in files)
    found = {hand_in.key: hand_in for hand_in in lms.hand_ins(folder, links)}
    assert sorted(found) == ['alice', 'mallory', 'trudy'] and found['alice'].notebook == 'alice.ipynb'
    assert found['mallory'].why.startswith('mallory.ipynb is a symbolic link: the review follows no link')
    assert found['trudy'].notebook is None


def test_what_a_hand_in_wrote_reaches_the_gradebook_feedback_and_terminal_inert(tmp_path):
    results = tmp_path / 'results'
    results.mkdir()
    learner = '=HYPERLINK("example.invalid","9")'
    message = '<img src=x onerror=alert(1)> [click](javascript:alert(1)) \x1b]0;pwned\x07\x1b[2J'
    review.write_result(str(results / f'{learner}.json'), review.result_of('x.ipynb', [
        Line('PASS', 'The notebook is there'), Line('FAIL', LINE['model_inputs'], message)]))
    rows = gradebook.merge(str(tmp_path))
    with open(tmp_path / 'gradebook.csv', newline='', encoding='utf-8-sig') as book:
        read = list(csv.DictReader(book))
    assert read[0]['learner'] == "'" + learner
    assert all(not value.startswith(inert.FORMULA_START) for row in read for value in row.values())
    feedback = (tmp_path / 'feedback' / f'{learner}.md').read_text()
    assert '<img' not in feedback and '&lt;img' in feedback and '\\[click\\](javascript' in feedback
    assert '\x1b' not in feedback
    page = (tmp_path / 'feedback' / f'{learner}.html').read_text()
    assert '<img' not in page and 'href="javascript' not in page and '\x1b' not in page
    from openpyxl import load_workbook
    cells = [cell for row in load_workbook(tmp_path / 'gradebook.xlsx').active.iter_rows() for cell in row]
    assert not any(cell.data_type == 'f' for cell in cells) and learner in [cell.value for cell in cells]
    shown = gradebook.summary(rows) + review.format_lines([Line('FAIL', 'x', message)])
    assert '\x1b' not in shown and '\x07' not in shown and '\\x1b' in shown


def test_the_scan_reads_what_python_reads_and_sees_through_aliases():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        'import os\rfrom os import write as w, symlink, _exit as leave\rimport sys as s\ry = s.argv\rleave(0)',
        'import io\nhandle = io.FileIO(3, "w")\nimport os as o\no.dup2(1, 3)',
        'x = ' + '-' * 50000 + '1', 'x = a' + '.b' * 40000)]
    found = scan.findings(nb)
    for expected in ('cell 1, line 2: imports os.write: file descriptors; imports os.symlink: links; imports '
                     'os._exit: the end of the process', 'cell 1, line 4: s.argv', 'cell 2, line 2: io.FileIO',
                     'cell 2, line 4: o.dup2: file descriptors', 'cell 3: code the scan cannot read',
                     'cell 4: code the scan cannot read'):
        assert any(finding.startswith(expected) for finding in found), (expected, found)
