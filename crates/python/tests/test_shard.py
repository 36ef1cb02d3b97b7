"""Data-parallel training: each rank gets its slice of every global batch, and DDP on 2 ranks
ends at the weights of 1 process trained on the global batch."""

import socket

import torch

import flowload
from conftest import AUGMENT, SYNTH, run_python


def test_the_ranks_slices_together_are_the_single_process_batch():
    kw = dict(batch_size=24, shuffle=True, seed=6, augment=AUGMENT, normalize=True, drop_last=True)
    whole = [[(x.clone(), y.clone()) for x, y in flowload.Loader(SYNTH, **kw)]]
    for world in (2, 3):
        ranks = [
            [(x.clone(), y.clone()) for x, y in flowload.Loader(SYNTH, rank=r, world_size=world, workers=r % 2 + 1, **kw)]
            for r in range(world)
        ]
        for i, (x, y) in enumerate(whole[0]):
            assert torch.equal(torch.cat([r[i][0] for r in ranks]), x), f"world {world} batch {i}"
            assert torch.equal(torch.cat([r[i][1] for r in ranks]), y)
            assert all(r[i][0].shape[0] == 24 // world for r in ranks)


def test_a_rank_that_cannot_get_rows_is_refused():
    try:
        flowload.Loader(SYNTH, batch_size=10, rank=0, world_size=4)  # last batch of 6 is fine
        flowload.Loader(SYNTH, batch_size=2, rank=0, world_size=4)
    except flowload.ConfigError as e:
        assert "cannot be split across 4 ranks" in str(e)
    else:
        raise AssertionError("a batch of 2 for 4 ranks was accepted")


TRAIN = """
import os, sys, torch, torch.distributed as dist
import flowload

def train(rank, world, port, out):
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10))
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    # rank and world size come from torch.distributed
    loader = flowload.Loader("%s", batch_size=32, shuffle=True, seed=1, drop_last=True,
                             augment=%r, normalize=True, workers=1)
    for epoch in range(3):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    if rank == 0:
        m = model.module if world > 1 else model
        torch.save({k: v.detach().clone() for k, v in m.state_dict().items()}, out)
    if world > 1:
        dist.destroy_process_group()

if __name__ == "__main__":
    world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if world == 1:
        train(0, 1, port, out)
    else:
        torch.multiprocessing.spawn(train, args=(world, port, out), nprocs=world)
""" % (SYNTH, AUGMENT)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_ranks_ends_at_the_single_process_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    weights = {}
    for world in (1, 2):
        out = tmp_path / f"w{world}.pt"
        done = run_python(script, world, free_port(), out, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        weights[world] = torch.load(out)
    for name, w in weights[1].items():
        assert torch.allclose(weights[2][name], w, rtol=1e-5, atol=1e-6), name
    start = torch.nn.Linear(192, 10)
    assert not torch.allclose(weights[1]["1.weight"], start.weight), "training moved the weights"


def test_the_layout_comes_from_torch_distributed_when_initialized():
    done = run_python(
        """
        import torch.distributed as dist, flowload
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d", rank=0, world_size=1)
        print(flowload.Loader("%s", batch_size=8).world_size)
        dist.destroy_process_group()
        """
        % (free_port(), SYNTH)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
