"""Mid-epoch state, torchdata's way: a new process resumes with exactly the batches to come."""

import itertools
import pickle

import pytest
import torch

import flowload
from conftest import AUGMENT, SYNTH, run_python

KW = dict(batch_size=8, shuffle=True, seed=7, augment=AUGMENT, normalize=True)


def take(loader, n=None):
    """The next epoch's first `n` batches (all with None): exactly n are asked for."""
    return [(x.clone(), y.clone()) for x, y in itertools.islice(loader, n)]


@pytest.mark.parametrize("workers", [0, 2, "auto"])
def test_a_state_after_k_batches_resumes_bit_for_bit(workers):
    reference = flowload.Loader(SYNTH, workers=0, **KW)
    full = [take(reference) for _ in range(3)]  # 12 batches per epoch
    first = flowload.Loader(SYNTH, workers=workers, **KW)
    take(first)  # epoch 0
    take(first, 5)  # 5 batches of epoch 1, then stopped
    state = first.state_dict()
    assert (state["epoch"], state["batches_yielded"]) == (1, 5)
    assert len(pickle.dumps(state)) < 2048, "positions and keys, not data"
    second = flowload.Loader(SYNTH, workers=workers, **KW)
    second.load_state_dict(state)
    rest = take(second)
    assert len(rest) == 7
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(rest, full[1][5:]))
    after = take(second)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(after, full[2])), "then the next epoch"


def test_a_new_process_resumes_from_a_saved_state(tmp_path):
    path = tmp_path / "state.pt"
    loader = flowload.Loader(SYNTH, workers=2, **KW)
    epoch = iter(loader)
    take(epoch, 4)
    torch.save(loader.state_dict(), path)
    expected = take(epoch)  # what this process gives next: batches 4.. of epoch 0
    torch.save(expected, tmp_path / "expected.pt")
    done = run_python(
        f"""
        import torch, flowload
        loader = flowload.Loader({SYNTH!r}, workers="auto", **{KW!r})
        loader.load_state_dict(torch.load({str(path)!r}))
        got = [(x, y) for x, y in loader]
        expected = torch.load({str(tmp_path / "expected.pt")!r})
        assert len(got) == len(expected) == 8, (len(got), len(expected))
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, expected))
        print("resumed")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "resumed"


def test_a_state_of_other_data_or_settings_is_refused_and_other_ranks_are_not():
    loader = flowload.Loader(SYNTH, **KW)
    take(loader, 3)
    state = loader.state_dict()
    other = flowload.Loader(SYNTH, **{**KW, "seed": 8})
    with pytest.raises(flowload.ConfigError, match="seed: the state has 7, this loader 8"):
        other.load_state_dict(state)
    other = flowload.Loader("synthetic:images=97,channels=3,size=8x8,seed=3", **KW)
    with pytest.raises(flowload.ConfigError, match="records: the state has 96, this loader 97"):
        other.load_state_dict(state)
    with pytest.raises(flowload.ConfigError, match="not a flowload loader state"):
        loader.load_state_dict({"epoch": 0})
    # Positions count global batches: rank 1 of 2 resumes from rank 0's single-process state.
    rank1 = flowload.Loader(SYNTH, rank=1, world_size=2, **KW)
    rank1.load_state_dict(state)
    full = take(flowload.Loader(SYNTH, **KW))
    rest = take(rank1)
    assert all(torch.equal(r[0], f[0][4:]) for r, f in zip(rest, full[3:]))
