"""What the loader gives: the pixels PIL decodes, the same batches at every worker count and
output, epochs in their order, uint8 that normalizes to the float32 batches bit for bit."""

import numpy as np
import pytest
import torch

import flowload
from conftest import AUGMENT, SYNTH


def epochs(loader, n):
    return [[(x.clone(), y.clone()) for x, y in loader] for _ in range(n)]


def same(a, b):
    return len(a) == len(b) and all(
        len(ea) == len(eb)
        and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(ea, eb))
        for ea, eb in zip(a, b)
    )


def test_an_image_folder_gives_the_pixels_pil_decodes(folder):
    root, pixels = folder
    loader = flowload.Loader(root, batch_size=4, output="batch")
    assert len(loader) == 6  # 21 images, the last batch of 1 kept
    seen = 0
    by_label = {}
    for path, (a, c) in pixels.items():
        by_label.setdefault(c, []).append(a)
    for batch in loader:
        images = np.from_dlpack(batch.images)
        labels = np.from_dlpack(batch.labels)
        assert images.dtype == np.float32 and images.shape[1:] == (3, 5, 6)
        for image, label in zip(images, labels):
            expected = [a.transpose(2, 0, 1).astype(np.float32) / 255 for a in by_label[label]]
            assert any(np.array_equal(image, e) for e in expected)
            seen += 1
    assert seen == 21


def test_the_batches_are_the_same_at_every_worker_count():
    def run(workers):
        loader = flowload.Loader(
            SYNTH, batch_size=10, shuffle=True, seed=5, augment=AUGMENT, normalize=True, workers=workers
        )
        return epochs(loader, 3)

    reference = run(0)
    assert len(reference) == 3 and len(reference[0]) == 10
    assert not torch.equal(reference[0][0][0], reference[1][0][0]), "epochs differ"
    for workers in (1, 3, "auto"):
        assert same(run(workers), reference), f"workers={workers}"


def test_set_epoch_gives_that_epoch_again():
    loader = flowload.Loader(SYNTH, batch_size=32, shuffle=True, seed=1, augment=AUGMENT, workers=2)
    first = epochs(loader, 3)
    loader.set_epoch(1)
    assert same(epochs(loader, 1), first[1:2])
    assert same(epochs(loader, 1), first[2:3]), "then the epoch after it"


def test_numpy_and_arrow_outputs_hold_the_same_values():
    import pyarrow as pa

    kw = dict(batch_size=16, shuffle=True, seed=2, augment=AUGMENT)
    tensors = epochs(flowload.Loader(SYNTH, **kw), 1)[0]
    arrays = list(flowload.Loader(SYNTH, output="numpy", **kw))
    batches = list(flowload.Loader(SYNTH, output="batch", **kw))
    for (x, y), (xn, yn), b in zip(tensors, arrays, batches):
        assert np.array_equal(x.numpy(), xn) and np.array_equal(y.numpy(), yn)
        record = pa.record_batch(b)
        assert record.schema.field("image").type == pa.list_(pa.field("item", pa.float32(), False), 192)
        assert record.schema.metadata[b"flowload.shape"] == b"[3,8,8]"
        flat = record.column("image").flatten().to_numpy()
        assert np.array_equal(flat, xn.reshape(-1))
        assert np.array_equal(record.column("label").to_numpy(), yn)


def test_uint8_pixels_normalize_on_the_device_to_the_float32_batches_bit_for_bit():
    kw = dict(batch_size=16, shuffle=True, seed=4, augment=AUGMENT, workers=2)
    normalized = flowload.Loader(SYNTH, normalize=True, **kw)
    raw = flowload.Loader(SYNTH, dtype="uint8", **kw)
    plain = flowload.Loader(SYNTH, **kw)
    for (xf, yf), (xu, yu), (xp, _) in zip(normalized, raw, plain):
        assert xu.dtype == torch.uint8 and torch.equal(yf, yu)
        assert torch.equal(flowload.normalize(xu, normalized.stats), xf)
        assert torch.equal(xu.float() / 255, xp)


def test_len_is_batches_per_epoch_with_and_without_drop_last():
    assert len(flowload.Loader(SYNTH, batch_size=10)) == 10
    assert len(flowload.Loader(SYNTH, batch_size=10, drop_last=True)) == 9
    loader = flowload.Loader(SYNTH, batch_size=10, drop_last=True)
    assert sum(1 for _ in loader) == 9


def test_metrics_count_each_epoch():
    loader = flowload.Loader(SYNTH, batch_size=10, workers=2)
    for _ in range(2):
        for _ in loader:
            pass
    m = loader.metrics
    assert [e["epoch"] for e in m] == [0, 1]
    assert all(e["images"] == 96 and e["batches"] == 10 and e["finished"] for e in m)
    assert all(0 <= e["data_wait_seconds"] <= e["seconds"] and e["workers"] == 2 for e in m)
    assert all(e["images_per_second"] > 0 for e in m)


def test_the_loader_has_help_and_a_repr():
    assert "batch_size" in flowload.Loader.__doc__
    assert "bit for bit" in flowload.Loader.load_state_dict.__doc__
    text = repr(flowload.Loader(SYNTH, batch_size=10))
    assert "96 records of 3x8x8" in text and "10 batches per epoch" in text
