"""What happens to a trapped call when one of its handlers fails.

A handler *fails* when it raises, outlives its deadline, or leaves a
``retval`` that is not an int.  Two policies:

- ``"continue"`` (the default): the failure is logged and counted, the other
  handlers still run, and the guest goes on with the verdict so far;
- ``"fail_closed"`` or ``FailClosed(errno)``: the failure is logged and
  counted, the handlers after it on that event do not run, and the call is
  refused: on entry it is skipped and returns ``-errno`` (if the verdict so
  far already skips it, that skip stands with its return value), on return
  its return value becomes ``-errno``.  ``"fail_closed"`` means
  ``FailClosed(errno.EPERM)``, "operation not permitted", which is what a
  policy denial returns.

Example::

    import errno
    from syscalls_async import FailClosed, Session, plugins

    @plugins.syscalls.syscall("openat", on_error=FailClosed(errno.EACCES))
    async def guard(regs, proto, syscall, dfd, filename, flags, mode): ...

    async with Session(on_error="fail_closed"):  # every hook that does not say otherwise
        ...
"""

from __future__ import annotations

import errno as _errno
from typing import Literal, TypeAlias

import msgspec

from ..errors import InvalidValue, RegistrationError

#: the largest errno a syscall can return (the kernel's MAX_ERRNO)
MAX_ERRNO = 4095


class FailClosed(msgspec.Struct, frozen=True):
    """Refuse the call with ``-errno`` when a handler fails (default ``EPERM``)."""

    errno: int = _errno.EPERM

    def __post_init__(self) -> None:
        e = self.errno
        if isinstance(e, bool) or not isinstance(e, int) or not 0 < e <= MAX_ERRNO:
            raise RegistrationError(
                f"FailClosed errno must be a positive errno number up to {MAX_ERRNO} "
                f"(e.g. errno.EACCES, 13), not {e!r}"
            )

    def __str__(self) -> str:
        return f"fail closed with -{_errno.errorcode.get(self.errno, str(self.errno))}"


#: what users may pass as ``on_error``
OnError: TypeAlias = Literal["continue", "fail_closed"] | FailClosed
#: a policy once checked
Policy: TypeAlias = Literal["continue"] | FailClosed


def failure_policy(value: object, where: str) -> Policy:
    """Check an ``on_error`` value; ``"fail_closed"`` becomes ``FailClosed()``."""
    if isinstance(value, FailClosed) or value == "continue":
        return value
    if value == "fail_closed":
        return FailClosed()
    raise RegistrationError(
        f"{where}: on_error must be 'continue', 'fail_closed' or FailClosed(errno), not {value!r}"
    )


def parse_errno(text: str) -> int:
    """An errno given by name (``EACCES``) or number (``13``), as on a command line."""
    name = text.strip().upper()
    number = getattr(_errno, name, None) if name.startswith("E") else None
    if number is None:
        try:
            number = int(text, 0)
        except ValueError:
            number = None
    if isinstance(number, int) and 0 < number <= MAX_ERRNO:
        return number
    raise InvalidValue(f"{text!r} is not an errno name or number (e.g. EPERM, EACCES, 13)")
