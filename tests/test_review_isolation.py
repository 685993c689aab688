"""The review of hand-ins nobody has read: each runs in a sandboxed child with limits, and its verdict is judged
from what its functions built, so nothing it prints, exits with or changes in its own process makes a PASS."""
import contextlib
import json
import os
import re
import socket
import threading
import time

import nbformat
import pytest

from conftest import solution_without_markers
from facegen.course import review, sandbox, scan
from facegen.notebooks import SOLUTION

LINE = {'model_inputs': 'model_inputs is implemented correctly',
        'discriminator': 'discriminator is implemented correctly',
        'generator': 'generator is implemented correctly', 'model_loss': 'model_loss is implemented correctly',
        'model_opt': 'model_opt is implemented correctly',
        'train': 'train builds the model with model_inputs, model_loss and model_opt and shows show_generator_output'}
SMALL = sandbox.Limits(check_s=20, memory_gb=8, processes=256, file_mb=64, tmp_mb=64)
needs_the_sandbox = pytest.mark.skipif(sandbox.bubblewrap()[0] is None, reason='bubblewrap cannot run here: '
                                       f'{sandbox.bubblewrap()[1]}')


def with_body_start(nb, function, code):
    """nb with code run first in function's body (after its docstring)."""
    cell = next(c for c in nb.cells if c.cell_type == 'code' and f'def {function}(' in c.source)
    head, rest = cell.source.split(f'def {function}(', 1)
    signature, after = rest.split('"""', 1)
    docstring, body = after.split('"""', 1)
    indented = ''.join(f'    {line}\n' for line in code.strip('\n').split('\n'))
    cell.source = f'{head}def {function}({signature}"""{docstring}"""\n{indented}{body.lstrip(chr(10))}'
    return nb


def with_cell_start(nb, function, code):
    cell = next(c for c in nb.cells if c.cell_type == 'code' and f'def {function}(' in c.source)
    cell.source = code.strip('\n') + '\n' + cell.source
    return nb


def write(tmp_path, nb, name='dlnd_face_generation.ipynb'):
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return str(path)


def verdicts(lines):
    return {line.rubric: (line.result, line.message) for line in lines if line.result in ('PASS', 'FAIL')}


@pytest.fixture(scope='module')
def listener():
    """A server on 127.0.0.1 that counts the connections it accepts."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen()
    accepted = []

    def accept():
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept())
    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


@needs_the_sandbox
def test_a_hand_in_that_attacks_the_review_from_every_function_fails_each_and_the_machine_keeps_its_files(
        tmp_path, listener):
    port, accepted = listener
    teacher_file = tmp_path / 'teacher' / 'grades.txt'
    teacher_file.parent.mkdir()
    teacher_file.write_text('kept')
    outside = tmp_path / 'outside.txt'
    nb = solution_without_markers()
    # model_inputs: reads the solution, opens a connection, writes and deletes outside its folder; says what it got
    with_body_start(nb, 'model_inputs', f"""
import os, socket
got = []
for attempt in (lambda: open({SOLUTION!r}).read()[:40],
                lambda: socket.create_connection(('127.0.0.1', {port}), timeout=5) and 'connected',
                lambda: open({str(outside)!r}, 'w').write('written'),
                lambda: os.remove({str(teacher_file)!r}),
                lambda: open('large.bin', 'wb').write(bytes(100 * 2 ** 20)),  # its own folder, past the file size
                lambda: open('/tmp/large.bin', 'wb').write(bytes(60 * 2 ** 20)) and  # its /tmp, past its size
                        open('/tmp/more.bin', 'wb').write(bytes(60 * 2 ** 20))):
    try:
        got.append(repr(attempt()))
    except Exception as error:
        got.append(type(error).__name__)
raise RuntimeError('got ' + ', '.join(got))
""")
    with_body_start(nb, 'discriminator', 'import os\nos._exit(0)')  # ends its process: the verdict is no PASS
    with_body_start(nb, 'generator', 'import numpy\nnumpy.ones(10 ** 11)')  # 800 GB: past the memory limit
    # Forged checks (the four lines) and a model_loss not written
    with_cell_start(nb, 'model_loss', 'import problem_unittests\nfor name in dir(problem_unittests):\n'
                                      '    if name.startswith("test_"):\n'
                                      '        setattr(problem_unittests, name, lambda *args, **kwargs: None)')
    cell = next(c for c in nb.cells if 'def model_loss(' in c.source)
    cell.source = re.sub(r'\n    return d_loss, g_loss', '\n    return None, None', cell.source)
    # A fork bomb, where the processes limit holds (as root, only in a pids cgroup: the review says so otherwise)
    with_body_start(nb, 'model_opt', 'import os\nwhile True:\n    os.fork()' if sandbox.processes_limited() else
                    'raise RuntimeError("no fork bomb where nothing limits it")')
    with_body_start(nb, 'train', 'sum(range(10 ** 15))')  # a loop inside one C call
    name = f'attack-{os.getpid()}-{time.monotonic_ns()}.ipynb'  # its recorders' command lines name it: ours alone
    lines = review.review(write(tmp_path, nb, name), limits=SMALL)
    found = verdicts(lines)

    model_inputs = found[LINE['model_inputs']]
    assert model_inputs[0] == 'FAIL'
    assert re.search(r"^model_inputs raised RuntimeError: got FileNotFoundError, (OSError|ConnectionRefusedError|"
                     r"PermissionError), (OSError|FileNotFoundError|PermissionError), FileNotFoundError, OSError, "
                     r"OSError \(raised in model_inputs, line \d+ of its cell: raise RuntimeError", model_inputs[1]), \
        model_inputs
    assert not accepted, 'the hand-in reached a server on this machine'
    assert not outside.exists() and teacher_file.read_text() == 'kept'
    assert 'Face Generation' not in model_inputs[1] and '"cells"' not in model_inputs[1]

    assert found[LINE['discriminator']][0] == 'FAIL'
    assert 'its process ended (exit status 0) before the check did' in found[LINE['discriminator']][1]
    assert found[LINE['generator']][0] == 'FAIL' and 'MemoryError' in found[LINE['generator']][1]
    assert found[LINE['model_loss']] == ('FAIL', "model_loss is not implemented yet: it returns (None, None). Write "
                                                 "its body in place of `# TODO: Implement Function`: the generated "
                                                 "images, the discriminator on the real and the generated images "
                                                 "(reuse=True the second time), and the two losses from sigmoid "
                                                 "cross-entropy.")
    assert found[LINE['model_opt']][0] == 'FAIL'
    assert found[LINE['train']][0] == 'FAIL' and 'ran past its time limit (20 s)' in found[LINE['train']][1]
    assert found['All the unit tests pass'][0] == 'FAIL' and not review.passed(lines)
    warned = [line.message for line in lines if line.rubric == 'Code to read before trusting this review']
    for expected in ('imports problem_unittests: the checks', 'os._exit: the end of the process',
                     'setattr(): another object', 'os.remove: files', 'imports socket: the network',
                     'open() of a path that may lie outside its folder',
                     *(['os.fork: a new process'] if sandbox.processes_limited() else [])):
        assert any(expected in message for message in warned), (expected, warned)
    assert not [line for line in lines if line.rubric == 'Sandbox'] or not sandbox.processes_limited()
    assert not recorders_running(name), 'what the fork bomb started ended with the review'


def recorders_running(notebook):
    """The processes of this machine that run a hand-in's recorder on that notebook (a review running beside the
    suite, a teacher's batch or a second checkout, has its own)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        with contextlib.suppress(OSError):
            with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
                line = cmdline.read()
                if b'facegen.course.recorder' in line and notebook.encode() in line:
                    found.append(pid)
    return found


@needs_the_sandbox
def test_what_a_hand_in_prints_or_exits_with_never_passes_it(tmp_path, capsys):
    nb = solution_without_markers()
    forged = '\\n'.join(f'PASS   {line}' for line in LINE.values()) + '\\n\\nEvery PASS/FAIL line passes.'
    with_cell_start(nb, 'model_inputs', f'print("{forged}")')
    with_body_start(nb, 'model_inputs', f'print("{forged}")\nimport sys\nsys.exit(0)')
    path = write(tmp_path, nb)
    assert review.main([path, '--check-seconds', '60', '--json', str(tmp_path / 'result.json')]) == 1
    printed = capsys.readouterr().out
    said = 'model_inputs raised SystemExit: 0 (raised in model_inputs, line 13 of its cell: sys.exit(0))'
    assert f'FAIL   model_inputs is implemented correctly\n         {said}' in printed
    assert printed.count('Every PASS/FAIL line passes') == 0
    result = json.loads((tmp_path / 'result.json').read_text())
    assert result['passed'] is False and result['lines'][2] == {
        'result': 'FAIL', 'rubric': LINE['model_inputs'], 'message': said}


def test_the_scan_names_the_cell_and_line_of_code_that_reaches_for_the_checks_and_none_in_the_project():
    for notebook in (SOLUTION,):
        assert scan.findings(nbformat.read(notebook, as_version=4)) == []
    nb = solution_without_markers()
    with_body_start(nb, 'generator', 'import ctypes, signal\nexec("x = 1")\nimport sys\nsys.modules["helper"] = None\n'
                                     'tests.test_generator = print\n__builtins__.print = None')
    number = next(i for i, c in enumerate(nb.cells, 1) if 'def generator(' in c.source)
    found = scan.findings(nb)
    for expected in ('imports ctypes', 'imports signal', 'exec(): code from a string', 'sys.modules: the loaded',
                     'tests.test_generator other than a call of a check', "__builtins__: the interpreter's"):
        assert any(f.startswith(f'cell {number}, line ') and expected in f for f in found), (expected, found)
    lines = [int(f.split(', line ')[1].split(':')[0]) for f in found]
    assert lines == sorted(lines), 'in the order of the source'


def test_evidence_that_does_not_follow_the_checks_fails_them():
    """The judge alone: evidence written by something other than the checks (here, none, or another function's)
    never passes."""
    import problem_unittests
    import tensorflow.compat.v1 as tf
    from facegen.course import judge
    loaded = {'functions': {'model_inputs': [['image_width', 'POSITIONAL_OR_KEYWORD', None],
                                             ['image_height', 'POSITIONAL_OR_KEYWORD', None],
                                             ['image_channels', 'POSITIONAL_OR_KEYWORD', None],
                                             ['z_dim', 'POSITIONAL_OR_KEYWORD', None]]}, 'names': []}
    failure, _ = judge.judge('test_model_inputs', [], loaded, 'STOPPED', problem_unittests, tf)
    assert failure == 'STOPPED'
    claimed = [{'kind': 'enter', 'function': 'model_inputs', 'args': {'tuple': [28, 28, 1, 100]},
                'kwargs': {'dict': []}}]
    failure, _ = judge.judge('test_model_inputs', claimed, loaded, 'STOPPED', problem_unittests, tf)
    assert 'called model_inputs with other arguments than the check' in failure
    calls_what_is_not_there = claimed[:0] + [{'kind': 'enter', 'function': 'model_inputs',
                                              'args': {'tuple': [28, 28, 3, 100]}, 'kwargs': {'dict': []}},
                                             {'kind': 'enter', 'function': 'nowhere', 'args': {'tuple': []},
                                              'kwargs': {'dict': []}}]
    failure, _ = judge.judge('test_model_inputs', calls_what_is_not_there, loaded, 'STOPPED', problem_unittests, tf)
    assert failure.startswith("the hand-in's process called 'nowhere', none of the notebook's functions")
    passed_claim = [{'kind': 'check_end'}]
    failure, _ = judge.judge('test_model_inputs', passed_claim, loaded, 'STOPPED', problem_unittests, tf)
    assert failure.startswith("the hand-in's process did 'check_end' where the check expected enter")


# The 2017 course's common way of writing the functions, unlike the solution's (tf.maximum for leaky ReLU, label
# smoothing, minimize under UPDATE_OPS), and a discriminator of tf.get_variable and a tf.Variable outside reuse.
IN_2017_STYLE = {
'model_inputs': '''
    inputs_real = tf.placeholder(tf.float32, (None, image_width, image_height, image_channels), name='input_real')
    inputs_z = tf.placeholder(tf.float32, (None, z_dim), name='input_z')
    learning_rate = tf.placeholder(tf.float32, shape=[], name='learning_rate')
    return inputs_real, inputs_z, learning_rate
''',
'discriminator': '''
    alpha = 0.2
    with tf.variable_scope('discriminator', reuse=reuse):
        x1 = tf.layers.conv2d(images, 64, 5, strides=2, padding='same')
        relu1 = tf.maximum(alpha * x1, x1)
        x2 = tf.layers.conv2d(relu1, 128, 5, strides=2, padding='same')
        bn2 = tf.layers.batch_normalization(x2, training=True)
        relu2 = tf.maximum(alpha * bn2, bn2)
        x3 = tf.layers.conv2d(relu2, 256, 5, strides=2, padding='same')
        bn3 = tf.layers.batch_normalization(x3, training=True)
        relu3 = tf.maximum(alpha * bn3, bn3)
        flat = tf.reshape(relu3, (-1, 4 * 4 * 256))
        logits = tf.layers.dense(flat, 1)
        out = tf.sigmoid(logits)
    return out, logits
''',
'generator': '''
    alpha = 0.2
    with tf.variable_scope('generator', reuse=not is_train):
        x1 = tf.layers.dense(z, 7 * 7 * 256)
        x1 = tf.reshape(x1, (-1, 7, 7, 256))
        x1 = tf.layers.batch_normalization(x1, training=is_train)
        x1 = tf.maximum(alpha * x1, x1)
        x2 = tf.layers.conv2d_transpose(x1, 128, 5, strides=2, padding='same')
        x2 = tf.layers.batch_normalization(x2, training=is_train)
        x2 = tf.maximum(alpha * x2, x2)
        logits = tf.layers.conv2d_transpose(x2, out_channel_dim, 5, strides=2, padding='same')
        out = tf.tanh(logits)
    return out
''',
'model_loss': '''
    smooth = 0.1
    g_model = generator(input_z, out_channel_dim)
    d_model_real, d_logits_real = discriminator(input_real)
    d_model_fake, d_logits_fake = discriminator(g_model, reuse=True)
    d_loss_real = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        logits=d_logits_real, labels=tf.ones_like(d_model_real) * (1 - smooth)))
    d_loss_fake = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        logits=d_logits_fake, labels=tf.zeros_like(d_model_fake)))
    g_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        logits=d_logits_fake, labels=tf.ones_like(d_model_fake)))
    return d_loss_real + d_loss_fake, g_loss
''',
'model_opt': '''
    t_vars = tf.trainable_variables()
    d_vars = [var for var in t_vars if var.name.startswith('discriminator')]
    g_vars = [var for var in t_vars if var.name.startswith('generator')]
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        d_train_opt = tf.train.AdamOptimizer(learning_rate, beta1=beta1).minimize(d_loss, var_list=d_vars)
        g_train_opt = tf.train.AdamOptimizer(learning_rate, beta1=beta1).minimize(g_loss, var_list=g_vars)
    return d_train_opt, g_train_opt
''',
}

MANUAL_DISCRIMINATOR = {'discriminator': '''
    with tf.variable_scope('discriminator', reuse=reuse):
        channels = images.get_shape().as_list()[-1]
        w1 = tf.get_variable('w1', [4, 4, channels, 32], initializer=tf.random_normal_initializer(stddev=0.02))
        x = tf.nn.conv2d(images, w1, strides=[1, 2, 2, 1], padding='SAME')
        x = tf.nn.leaky_relu(x, 0.2)
        w2 = tf.get_variable('w2', [4, 4, 32, 64], initializer=tf.random_normal_initializer(stddev=0.02))
        x = tf.nn.conv2d(x, w2, strides=[1, 2, 2, 1], padding='SAME')
        x = tf.layers.batch_normalization(x, training=True)
        x = tf.nn.leaky_relu(x, 0.2)
        x = tf.reshape(x, (-1, 7 * 7 * 64))
        w3 = tf.get_variable('w3', [7 * 7 * 64, 1])
        b3 = tf.Variable(tf.zeros([1]), name='b3')
        logits = tf.matmul(x, w3) + b3
        keep = tf.nn.dropout(logits, rate=0.0)
        return tf.sigmoid(keep), keep
'''}


def with_bodies(nb, bodies):
    """nb with each function's body replaced (its signature, docstring and check kept)."""
    for name, body in bodies.items():
        cell = next(c for c in nb.cells if c.cell_type == 'code' and f'def {name}(' in c.source)
        head, rest = cell.source.split(f'def {name}(', 1)
        signature, after = rest.split('"""', 1)
        docstring, tail = after.split('"""', 1)
        checks = tail[tail.index('\n\n\n'):] if '\n\n\n' in tail else ''
        cell.source = f'{head}def {name}({signature}"""{docstring}"""{body}{checks}'
    return nb


@pytest.mark.parametrize('bodies, failing', [(IN_2017_STYLE, {}), (MANUAL_DISCRIMINATOR, {'discriminator'})])
def test_the_review_judges_a_hand_in_as_its_checks_do_in_the_learners_own_process(tmp_path, bodies, failing):
    """Functions written otherwise than the solution: each line of the review is what the check says run beside
    them in one process, as the learner runs it, message and all."""
    import contextlib
    import io

    import problem_unittests
    import tensorflow.compat.v1 as tf
    from facegen.notebooks import loader
    path = write(tmp_path, with_bodies(solution_without_markers(), bodies))
    functions = loader.notebook_functions(path)
    lines = verdicts(review.review(path))
    for name, check in review.MODEL_CHECKS:
        args = (functions[name],) if check in ('test_model_inputs', 'test_model_loss') else (functions[name], tf)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                getattr(problem_unittests, check)(*args)
            expected = ('PASS', '')
        except AssertionError as error:
            expected = ('FAIL', str(error))
        assert lines[LINE[name]][:1] == expected[:1] and lines[LINE[name]][1].startswith(expected[1]), name
        assert (expected[0] == 'FAIL') == (name in failing), name


def test_without_bubblewrap_the_review_says_what_that_means_and_keeps_the_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, 'bubblewrap', lambda: (None, 'bubblewrap is not installed (apt install bubblewrap)'))
    nb = with_body_start(solution_without_markers(), 'train', 'sum(range(10 ** 15))')
    lines = review.review(write(tmp_path, nb), limits=sandbox.Limits(check_s=12))
    found = verdicts(lines)
    assert 'ran past its time limit (12 s)' in found[LINE['train']][1]
    assert found[LINE['generator']][0] == 'PASS'
    [note] = [line for line in lines if line.rubric == 'Sandbox']
    assert note.result == 'INFO' and note.message.startswith('the hand-ins run without a sandbox: bubblewrap is not '
                                                             'installed') and 'network' in note.message


def test_the_sandbox_makes_its_private_tmp_before_binding_a_project_or_python_that_lies_under_tmp(tmp_path):
    """bubblewrap mounts in order: a /tmp made after the binds would hide a checkout or a venv in /tmp."""
    args = sandbox._binds(str(tmp_path), str(tmp_path), 64)
    assert args.index('--tmpfs') < min(index for index, arg in enumerate(args) if arg in ('--ro-bind', '--bind'))


@needs_the_sandbox
def test_a_sandbox_whose_python_cannot_start_is_the_machines_fault_saying_what_it_printed_last(tmp_path,
                                                                                             monkeypatch):
    monkeypatch.setattr(sandbox, '_environment', lambda inside: {'PATH': '/nowhere', 'PYTHONPATH': '/nowhere',
                                                                 'PYTHONHOME': '/nowhere'})
    with pytest.raises(sandbox.CannotRun, match=r"^a sandboxed Python does not start here \(exit status \d+; the last "
                                                r"line of its log: '.+'\)$"):
        review.review(write(tmp_path, solution_without_markers()), limits=SMALL)


@needs_the_sandbox
def test_a_hand_in_whose_process_ends_as_its_cells_load_says_what_it_printed_last(tmp_path):
    nb = solution_without_markers()
    nb.cells.insert(1, nbformat.v4.new_code_cell('import os\nos.write(2, b"my last words\\n")\nos._exit(3)\n'
                                                 'def model_inputs(): pass'))
    found = verdicts(review.review(write(tmp_path, nb), limits=SMALL))
    assert found['The notebook is there'][0] == 'FAIL'
    assert re.search(r"its cells could not be loaded: its process ended \(exit status 3\).*the last line of its "
                     r"output.log: 'my last words'", found['The notebook is there'][1]), found['The notebook is there']


def test_as_root_without_a_pids_cgroup_the_review_says_the_processes_limit_does_not_hold(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, 'PIDS_CGROUPS', (str(tmp_path / 'none'),))
    monkeypatch.setattr(sandbox.os, 'geteuid', lambda: 0)
    assert not sandbox.processes_limited()
    assert 'As root, the processes limit does not hold' in sandbox.sandbox_note()
    monkeypatch.setattr(sandbox.os, 'geteuid', lambda: 1000)
    assert sandbox.processes_limited()


def test_where_hand_ins_cannot_run_apart_the_review_says_so_before_starting(monkeypatch, capsys, tmp_path):
    from facegen.course import batch
    monkeypatch.setattr(sandbox.os, 'name', 'nt')
    assert review.main([SOLUTION]) == 2
    assert batch.main(['--handins', str(tmp_path)]) == 2
    assert capsys.readouterr().err.count('Not here: the review runs each hand-in in a process of its own') == 2


def test_a_hand_in_that_writes_its_own_steps_to_the_evidence_is_still_stopped_in_time(tmp_path):
    """Each step's time starts at its `check` event, which the hand-in's code can write too: a loop that writes one
    every second is stopped all the same, at the sum of its steps' limits."""
    import time
    nb = with_body_start(solution_without_markers(), 'train', """
import os, time
while True:
    for fd in range(3, 30):
        try:
            os.write(fd, b'{"kind": "check", "name": "test_train"}\\n')
        except OSError:
            pass
    time.sleep(1)
""")
    (tmp_path / sandbox.HANDIN_FOLDER).mkdir()
    path = write(tmp_path / sandbox.HANDIN_FOLDER, nb)
    start = time.monotonic()
    events = list(sandbox.recorded(path, str(tmp_path), ['test_train'], sandbox.Limits(check_s=10)))
    assert time.monotonic() - start < 10 * 2 + 10
    assert events[-1] == {'kind': 'ended', 'step': 'test_train', 'why': 'it ran past its time limit (10 s) and was '
                                                                        'stopped: does a loop never end?'}
    assert sum(event == {'kind': 'check', 'name': 'test_train'} for event in events) > 2, 'it wrote its steps'
