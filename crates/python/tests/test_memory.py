"""No copy, and memory safety: a tensor owns its buffer until torch frees it."""

import gc

import torch

import flowload
from conftest import SYNTH


def test_tensors_kept_across_epochs_and_after_the_loader_stay_unchanged():
    loader = flowload.Loader(SYNTH, batch_size=8, shuffle=True, seed=0, normalize=True, workers=2)
    kept = [(x, y) for x, y in loader]  # every tensor of epoch 0, held
    copies = [(x.clone(), y.clone()) for x, y in kept]
    assert len({x.data_ptr() for x, _ in kept}) == len(kept), "no two live batches share memory"
    for _ in range(3):  # the pool recycles only buffers nobody holds
        for x, _ in loader:
            assert all(x.data_ptr() != k.data_ptr() for k, _ in kept)
    del loader
    gc.collect()
    for (x, y), (xc, yc) in zip(kept, copies):
        assert torch.equal(x, xc) and torch.equal(y, yc)


def test_a_batch_is_handed_over_without_a_copy():
    loader = flowload.Loader(SYNTH, batch_size=8, output="batch")
    batch = next(iter(loader))
    a = torch.from_dlpack(batch.images)
    b = torch.from_dlpack(batch.images)
    assert a.data_ptr() == b.data_ptr(), "two imports of one batch are one buffer"
    assert a.is_contiguous() and a.shape == (8, 3, 8, 8)


def test_an_unconsumed_capsule_frees_its_buffer():
    loader = flowload.Loader(SYNTH, batch_size=8, output="batch")
    batch = next(iter(loader))
    for _ in range(1000):
        batch.images.__dlpack__()  # dropped unread: its destructor deletes the tensor
    assert torch.from_dlpack(batch.images).shape[0] == 8
