"""flowload's exceptions: what the binary prints, raised as the Python class a user catches."""


class Error(Exception):
    """Every error flowload raises."""


class ConfigError(Error, ValueError):
    """A setting flowload cannot run with: a bad transform spec, rank, batch size, dtype."""


class DataError(Error, ValueError):
    """Bad data: the message names the file and the record (row) and what is wrong."""


class DataNotFoundError(Error, OSError):
    """The data cannot be found or read: a missing directory, file or shard."""


class LoaderError(Error, RuntimeError):
    """The loader stopped: its threads failed, it is closed, or it was used after a fork."""
