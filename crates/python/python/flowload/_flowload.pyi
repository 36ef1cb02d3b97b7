"""Type stubs of flowload's native module (crates/python/src): the layer under flowload.Loader."""

from typing import Any

class Array:
    """A CPU array in a batch's buffer, exported through DLPack without a copy."""

    @property
    def shape(self) -> list[int]: ...
    def __dlpack__(
        self,
        *,
        stream: Any = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any: ...
    def __dlpack_device__(self) -> tuple[int, int]: ...

class Batch:
    """One batch: images and labels as DLPack arrays, the whole through the Arrow PyCapsule
    interface."""

    @property
    def images(self) -> Array: ...
    @property
    def labels(self) -> Array: ...
    @property
    def epoch(self) -> int: ...
    @property
    def index(self) -> int: ...
    @property
    def skipped(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __arrow_c_schema__(self) -> Any: ...
    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]: ...

class Loader:
    def __init__(
        self,
        data: str,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        augment: list[str],
        normalize: bool,
        workers: str,
        dtype: str,
        rank: int,
        world_size: int,
        split: str,
        on_bad_record: str,
        prefetch: int,
        stats_cache: str | None,
    ) -> None: ...
    def __len__(self) -> int: ...
    def begin(self) -> int: ...
    def next(self) -> Batch | None: ...
    def set_epoch(self, epoch: int) -> None: ...
    def position(self) -> tuple[int, int]: ...
    def resume_at(self, epoch: int, batches: int) -> None: ...
    def fingerprint(self) -> dict[str, Any]: ...
    def record(
        self,
        epoch: int | None = None,
        *,
        loss: float | None = None,
        accuracy: float | None = None,
        test_loss: float | None = None,
        test_accuracy: float | None = None,
        eval_seconds: float | None = None,
    ) -> None: ...
    def write_results(
        self,
        out: str,
        *,
        run: int | None,
        model: str,
        optimizer: str | None,
        lr: float | None,
        device: str,
    ) -> str: ...
    @property
    def stats(self) -> dict[str, Any] | None: ...
    @property
    def metrics(self) -> list[dict[str, Any]]: ...
    @property
    def shape(self) -> tuple[int, int, int]: ...
    @property
    def records(self) -> int: ...
    @property
    def workers_setting(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...

def formats_help() -> str: ...
def transforms_help() -> str: ...
