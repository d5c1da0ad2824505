"""latent.LatentError and one subclass per latent_status."""

from ._ffi import Status, lib


class LatentError(Exception):
    """A call into liblatent failed: `status` is the latent_status, `message` the library's
    latent_last_error_message() for it."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message


class NullArgument(LatentError, ValueError):
    status = Status.NULL_ARGUMENT


class InvalidArgument(LatentError, ValueError):
    status = Status.INVALID_ARGUMENT


class ShapeMismatch(LatentError, ValueError):
    status = Status.SHAPE_MISMATCH


class NonFinite(LatentError, ValueError):
    status = Status.NON_FINITE


class LatentIOError(LatentError, OSError):
    status = Status.IO


class BadFormat(LatentError):
    status = Status.BAD_FORMAT


class Unsupported(LatentError):
    status = Status.UNSUPPORTED


class OutOfMemory(LatentError, MemoryError):
    status = Status.OUT_OF_MEMORY


class Cancelled(LatentError):
    status = Status.CANCELLED


class InternalError(LatentError):
    status = Status.INTERNAL


class BufferTooSmall(LatentError):
    status = Status.BUFFER_TOO_SMALL


class Diverged(LatentError):
    status = Status.DIVERGED


class Busy(LatentError):
    status = Status.BUSY


_BY_STATUS = {
    cls.status: cls
    for cls in (
        NullArgument,
        InvalidArgument,
        ShapeMismatch,
        NonFinite,
        LatentIOError,
        BadFormat,
        Unsupported,
        OutOfMemory,
        Cancelled,
        InternalError,
        BufferTooSmall,
        Diverged,
        Busy,
    )
}


def error_for(status):
    """The exception for a non-OK status, with the calling thread's last error message."""
    msg = lib.latent_last_error_message()
    msg = msg.decode("utf-8", "replace") if msg else ""
    cls = _BY_STATUS.get(status, LatentError)
    name = lib.latent_status_string(status).decode()
    return cls(f"{name}: {msg}" if msg else name, status)


def check(status):
    if status != 0:
        raise error_for(status)
