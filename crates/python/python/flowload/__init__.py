"""flowload: training data as a streaming dataflow, loaded for your own PyTorch loop.

flowload decodes, augments, normalizes and batches on its own Rust threads, and hands each
batch to torch without a copy (DLPack). Use it where you would use a DataLoader::

    import flowload

    loader = flowload.Loader("photos/", batch_size=256, shuffle=True, seed=0, drop_last=True,
                             augment=["random_resized_crop:224", "hflip"], normalize=True,
                             workers="auto")
    for epoch in range(10):
        for images, labels in loader:    # torch.Tensor [B,C,H,W] float32, int64 [B]
            ...

The data specs, transform specs, statistics cache and bad-record policy are the ``flowload``
binary's (``flowload.formats_help()``, ``flowload.transforms_help()``). The same seed gives
the same batches, bit for bit, at any worker count and any number of ranks.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

from . import _flowload
from ._errors import ConfigError, DataError, DataNotFoundError, Error, LoaderError

__all__ = [
    "Loader",
    "normalize",
    "formats_help",
    "transforms_help",
    "Error",
    "ConfigError",
    "DataError",
    "DataNotFoundError",
    "LoaderError",
]

__version__ = "0.1.0"

#: The version of ``Loader.state_dict()``'s layout.
STATE_VERSION = 1

#: Fingerprint entries a state may differ in: batches are counted in global batches, so a
#: state saved on any rank resumes any rank of any world size.
_LAYOUT_KEYS = ("rank", "world_size")

_OUTPUTS = ("torch", "numpy", "batch")


def formats_help() -> str:
    """The data formats flowload reads, and where it looks for each."""
    return _flowload.formats_help()


def transforms_help() -> str:
    """The transforms flowload applies (``augment=[...]``), with their arguments."""
    return _flowload.transforms_help()


def _distributed_layout() -> tuple[int, int]:
    """``(rank, world_size)`` from ``torch.distributed`` when it is initialized, else ``(0, 1)``."""
    try:
        import torch.distributed as dist
    except ImportError:
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Loader:
    """Batches of a data set, epoch by epoch, like ``torch.utils.data.DataLoader``.

    Args:
        data: a data spec: a directory of IDX files, Parquet shards (file, directory or glob),
            an image folder (``class/image.jpg``), or ``synthetic:...``.
        batch_size: images per batch; with ``world_size`` > 1, the global batch.
        shuffle: shuffle each epoch from ``(seed, epoch)``.
        seed: the shuffle's and the augmentations' seed.
        drop_last: drop each epoch's last partial batch.
        augment: transform specs, applied in order (``"random_resized_crop:224"``, ``"hflip"``,
            ``"resize:32x32"``, ...); random ones draw from ``(seed, epoch, record)``.
        normalize: normalize each channel as ``(x/255 - mean)/std`` with the split's statistics
            (computed once, then kept in the statistics cache); else ``x/255``.
        workers: decode threads: ``0`` builds each batch when asked, ``N`` runs N threads
            ahead, ``"auto"`` tunes the count as it runs.
        dtype: ``"float32"`` (normalized) or ``"uint8"`` (raw pixels, a quarter of the bytes to
            copy to a device; normalize there with :func:`flowload.normalize`).
        rank, world_size: data-parallel training: this rank's slice of every global batch. The
            slices of all ranks together are the single-process batch, bit for bit. Default:
            from ``torch.distributed`` when initialized, else 0 and 1.
        split: ``"train"`` or ``"test"``.
        on_bad_record: ``"fail"`` (raise :class:`DataError` naming the file and row) or
            ``"skip"`` (leave it out and count it in ``metrics``).
        prefetch: batches each worker builds ahead (``prefetch_factor``).
        stats_cache: the statistics cache's directory, or ``"off"``; default
            ``$FLOWLOAD_STATS_CACHE``, else ``~/.cache/flowload/stats``.
        output: ``"torch"`` gives ``(images, labels)`` tensors, ``"numpy"`` arrays, ``"batch"``
            the :class:`flowload.Batch` itself (DLPack arrays and the Arrow PyCapsule
            interface, for pyarrow, polars or DuckDB).

    Each ``iter(loader)`` is the next epoch (or the one :meth:`set_epoch` or
    :meth:`load_state_dict` asked for); ``len(loader)`` is its number of batches. A tensor
    owns its buffer until it is freed, across iterations and after the loader is gone.
    """

    def __init__(
        self,
        data: str | os.PathLike[str],
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        augment: Sequence[str] = (),
        normalize: bool = False,
        workers: int | str = 0,
        dtype: str = "float32",
        rank: int | None = None,
        world_size: int | None = None,
        split: str = "train",
        on_bad_record: str = "fail",
        prefetch: int = 2,
        stats_cache: str | os.PathLike[str] | None = None,
        output: str = "torch",
    ) -> None:
        if output not in _OUTPUTS:
            raise ConfigError(f"output: {output!r} is not one of {', '.join(_OUTPUTS)}")
        if isinstance(augment, str):
            raise ConfigError(f"augment: give a list of transform specs, not the string {augment!r}")
        if rank is None or world_size is None:
            auto_rank, auto_world = _distributed_layout()
            rank = auto_rank if rank is None else rank
            world_size = auto_world if world_size is None else world_size
        for name, value in (("batch_size", batch_size), ("seed", seed), ("prefetch", prefetch),
                            ("rank", rank), ("world_size", world_size)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
                raise ConfigError(f"{name}: {value!r} is not an integer in 0..2**64")
        self._output = output
        self._convert = _converter(output)
        self._native = _flowload.Loader(
            os.fspath(data),
            batch_size=batch_size,
            shuffle=bool(shuffle),
            seed=seed,
            drop_last=bool(drop_last),
            augment=[str(a) for a in augment],
            normalize=bool(normalize),
            workers=str(workers),
            dtype=dtype,
            rank=rank,
            world_size=world_size,
            split=split,
            on_bad_record=on_bad_record,
            prefetch=prefetch,
            stats_cache=None if stats_cache is None else os.fspath(stats_cache),
        )
        self.batch_size = batch_size
        self.dtype = dtype
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return len(self._native)

    def __iter__(self) -> Iterator[Any]:
        native, convert = self._native, self._convert
        native.begin()
        while True:
            batch = native.next()
            if batch is None:
                return
            yield convert(batch)

    def set_epoch(self, epoch: int) -> None:
        """The next ``iter(loader)`` gives epoch ``epoch`` (``DistributedSampler.set_epoch``)."""
        self._native.set_epoch(epoch)

    @property
    def stats(self) -> dict[str, Any] | None:
        """``{"mean": [...], "std": [...], "images": n}`` per channel, in ``x/255`` units; ``None``
        without ``normalize``."""
        return self._native.stats

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """One dict per epoch iterated: ``epoch``, ``batches``, ``images``, ``seconds``,
        ``images_per_second``, ``data_wait_seconds`` (time the loop waited in ``__next__``),
        ``data_wait_fraction``, ``workers`` (active at the end), ``skipped``, ``finished``, and
        what :meth:`record` added (``loss``, ``accuracy``, ``test_loss``, ``test_accuracy``)."""
        return self._native.metrics

    def record(
        self,
        epoch: int | None = None,
        *,
        loss: float | None = None,
        accuracy: float | None = None,
        test_loss: float | None = None,
        test_accuracy: float | None = None,
        eval_seconds: float | None = None,
    ) -> None:
        """Adds the training loop's own figures to an epoch (default: the one being iterated,
        else the last one): they appear in :attr:`metrics` and in the columns of the same names
        that :meth:`write_results` writes. A later call for the same epoch replaces the values
        it gives and keeps the others."""
        values = {"loss": loss, "accuracy": accuracy, "test_loss": test_loss,
                  "test_accuracy": test_accuracy, "eval_seconds": eval_seconds}
        for name, value in values.items():
            if value is not None:
                values[name] = float(value)  # a 0-d tensor or numpy scalar too
        self._native.record(epoch, **values)

    def write_results(
        self,
        out: str | os.PathLike[str],
        *,
        run: int | None = None,
        model: str = "python",
        optimizer: str | None = None,
        lr: float | None = None,
        device: Any = None,
    ) -> str:
        """Writes every epoch that ran to its end as flowload's run file,
        ``<out>/runs/run-NNNN.parquet``, the binary's own format: ``flowload report <out>``,
        DuckDB (``read_parquet('<out>/runs/*.parquet')``), pandas and polars read it as they
        read a binary run. One row per epoch, counted from 1 as the binary counts them; the
        loader's settings are the file's ``flowload.config`` metadata.

        Args:
            out: the results directory (made when missing).
            run: the run number; default the next free one. An existing run file is never
                replaced: a taken number raises :class:`ConfigError`.
            model, optimizer, lr, device: the run's grid point, as the report groups runs by
                them. An optimizer other than ``adam``, ``adamw`` or ``sgd``, or none, is
                written as ``other``; ``lr=None`` as NaN.

        Returns the file's path."""
        return os.fspath(self._native.write_results(
            os.fspath(out),
            run=run,
            model=str(model),
            optimizer=None if optimizer is None else str(optimizer),
            lr=None if lr is None else float(lr),
            device="unknown" if device is None else str(device),
        ))

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of every image."""
        return self._native.shape

    def state_dict(self) -> dict[str, Any]:
        """Where the loop is, torchdata's way: the epoch and the batches given in it, with the
        settings that decide the batches. Small: positions and keys, no data."""
        epoch, batches = self._native.position()
        return {
            "flowload_state": STATE_VERSION,
            "epoch": epoch,
            "batches_yielded": batches,
            "settings": dict(self._native.fingerprint()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resumes where ``state`` was saved: the next ``iter(loader)`` gives, bit for bit, the
        batches the saving loader would have given next. Refuses a state of other data or
        settings (a different rank or world size is fine)."""
        if not isinstance(state, dict) or state.get("flowload_state") != STATE_VERSION:
            raise ConfigError(
                f"not a flowload loader state (version {STATE_VERSION}): "
                f"keys {sorted(state) if isinstance(state, dict) else type(state).__name__}"
            )
        mine = dict(self._native.fingerprint())
        theirs = state.get("settings", {})
        differ = [
            f"{key}: the state has {theirs.get(key)!r}, this loader {mine.get(key)!r}"
            for key in sorted(set(mine) | set(theirs))
            if key not in _LAYOUT_KEYS and theirs.get(key) != mine.get(key)
        ]
        if differ:
            raise ConfigError(
                "this state is for other data or settings, so its batches would not be the ones "
                "to come: " + "; ".join(differ)
            )
        self._native.resume_at(int(state["epoch"]), int(state["batches_yielded"]))

    def close(self) -> None:
        """Stops the decode threads. Tensors already handed out stay valid."""
        self._native.close()

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c, h, w = self.shape
        return (
            f"flowload.Loader({self._native.records} records of {c}x{h}x{w}, "
            f"batch_size={self.batch_size}, {len(self)} batches per epoch, "
            f"workers={self._native.workers_setting}, dtype={self.dtype}, "
            f"rank {self.rank} of {self.world_size})"
        )


def _converter(output: str):
    """How a native batch becomes what the loop gets."""
    if output == "batch":
        return lambda batch: batch
    if output == "numpy":
        import numpy as np

        return lambda batch: (np.from_dlpack(batch.images), np.from_dlpack(batch.labels))
    try:
        import torch
    except ImportError as e:
        raise ConfigError(
            "output='torch' needs PyTorch; without it give output='numpy' or output='batch'"
        ) from e
    from_dlpack = torch.from_dlpack
    return lambda batch: (from_dlpack(batch.images), from_dlpack(batch.labels))


def normalize(images: Any, stats: dict[str, Any], dtype: Any = None) -> Any:
    """``(x/255 - mean)/std`` per channel of a ``[B,C,H,W]`` uint8 tensor, on its device: what
    ``dtype="uint8"`` leaves to the trainer. In float32 it gives, bit for bit, what the loader
    gives with ``normalize=True``."""
    import torch

    dtype = dtype or torch.float32
    shape = (1, -1, 1, 1)
    mean = torch.tensor(stats["mean"], dtype=dtype, device=images.device).view(shape)
    std = torch.tensor(stats["std"], dtype=dtype, device=images.device).view(shape)
    return images.to(dtype).div_(255).sub_(mean).div_(std)
