"""A run's checkpoints, checked before they are trusted: the newest that reads back whole is restored (one line
names any newer one skipped and why), a checkpoint that does not read back after saving is never left as the
newest, and a graph that no longer fits its checkpoint is named variable by variable."""
import os

import tensorflow.compat.v1 as tf


class NoIntactCheckpointError(OSError):
    """Every checkpoint of a run is damaged (cut short, a file missing)."""


class CheckpointMismatchError(ValueError):
    """The graph's variables differ from the checkpoint's: another network, or another z_dim."""


def problem_with(checkpoint):
    """Why a checkpoint cannot be restored (a file missing, a variable that does not read back), or None."""
    if not os.path.isfile(checkpoint + '.meta'):
        return f'{os.path.basename(checkpoint)}.meta is missing'
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)  # a cut data file fails here, not only when restoring
    except Exception as error:  # a damaged file fails in many ways: OpError, IndexError, ValueError...
        message = getattr(error, 'message', str(error)) or type(error).__name__
        return f'it does not read back ({type(error).__name__}: {message.splitlines()[0][:160]})'
    return None


def saved(checkpoint_dir):
    """The checkpoints TensorFlow's state file lists in checkpoint_dir, newest first."""
    state = tf.train.get_checkpoint_state(checkpoint_dir)
    return list(reversed(state.all_model_checkpoint_paths)) if state else []


def newest_intact(checkpoint_dir):
    """
    The newest checkpoint in checkpoint_dir that reads back whole; each newer one skipped gets a line saying why
    :return: Its path, or None when there is no checkpoint at all
    :raises NoIntactCheckpointError: When there are checkpoints and none reads back
    """
    found, problems = saved(checkpoint_dir), []
    for checkpoint in found:
        problem = problem_with(checkpoint)
        if problem is None:
            return checkpoint
        problems.append(f'{os.path.basename(checkpoint)}: {problem}')
        print(f'Skipped the checkpoint {checkpoint}: {problem}.')
    if found:
        raise NoIntactCheckpointError(
            f'No checkpoint in {checkpoint_dir} reads back ({"; ".join(problems)}). Train afresh with '
            f'resume=False: it starts a new run and keeps this one.')
    return None


def forget_if_damaged(checkpoint):
    """After saving: a checkpoint that does not read back is dropped from the state file, so the one before it
    stays the newest. Returns why it was dropped, or None."""
    problem = problem_with(checkpoint)
    if problem is not None:
        folder = os.path.dirname(checkpoint)
        kept = [path for path in reversed(saved(folder)) if path != checkpoint]
        if kept:
            tf.train.update_checkpoint_state(folder, kept[-1], all_model_checkpoint_paths=kept)
        else:
            os.remove(os.path.join(folder, 'checkpoint'))
        print(f'The checkpoint {checkpoint} just saved does not read back ({problem}): the one before stays the '
              f'newest. Is the disk full?')
    return problem


def check_fits(checkpoint, variables):
    """Raise CheckpointMismatchError naming each variable that differs between the checkpoint and the graph."""
    in_checkpoint = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    in_graph = {variable.op.name: variable.shape.as_list() for variable in variables}
    differences = [f'{name}: {in_checkpoint[name]} in the checkpoint, {in_graph[name]} in the graph'
                   for name in sorted(set(in_checkpoint) & set(in_graph)) if in_checkpoint[name] != in_graph[name]]
    differences += [f'{name}: only in the graph {in_graph[name]}' for name in sorted(set(in_graph) - set(in_checkpoint))]
    differences += [f'{name}: only in the checkpoint {in_checkpoint[name]}'
                    for name in sorted(set(in_checkpoint) - set(in_graph))]
    if differences:
        raise CheckpointMismatchError(
            f'The network does not fit the checkpoint {checkpoint}: another network or z_dim than the run was '
            f'trained with. {len(differences)} variables differ:\n  ' + '\n  '.join(differences) +
            '\nResume with the network the run was trained with, or train afresh with resume=False: it starts a '
            'new run and keeps this one.')
