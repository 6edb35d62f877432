"""How many threads klkit's numpy kernels use, and the pool that runs them.

The count is, in order: the value given to :func:`set_num_threads`; else the
environment variable ``KLKIT_NUM_THREADS``; else the CPUs this process may run
on (``os.sched_getaffinity``), capped by ``torch.get_num_threads()`` when torch
is imported, so that klkit and torch together never oversubscribe the machine
(torch sets one thread in ``DataLoader`` workers, and so does klkit then).

The pool is dropped in a child process after ``fork`` (its threads do not
exist there) and built again on the next call.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["ENV_VAR", "get_num_threads", "parallel_map", "set_num_threads"]

ENV_VAR = "KLKIT_NUM_THREADS"

_chosen: int | None = None  # set_num_threads; None: the default
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_users: dict[ThreadPoolExecutor, int] = {}  # calls running on each pool (the current one and replaced ones)
_lock = threading.Lock()


def set_num_threads(n: int | None) -> None:
    """Set the number of threads klkit's numpy kernels use; None restores the default.

    Parameters
    ----------
    n : int or None
        A positive thread count, used as given (no cap). None goes back to the
        default: ``KLKIT_NUM_THREADS`` if set, else the CPUs this process may
        run on, capped by ``torch.get_num_threads()`` when torch is imported.

    Raises
    ------
    TypeError
        If ``n`` is not an integer or None.
    ValueError
        If ``n`` is not positive.

    Notes
    -----
    Results do not depend on the thread count: each row is summed in the same
    order whatever the number of threads.

    Examples
    --------
    >>> import klkit
    >>> klkit.set_num_threads(2)
    >>> klkit.get_num_threads()
    2
    >>> klkit.set_num_threads(None)  # back to the default
    >>> klkit.get_num_threads() >= 1
    True
    """
    global _chosen
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise TypeError(f"`n` must be a positive integer or None; found {type(n).__name__} {n!r}.")
    if n is not None and n < 1:
        raise ValueError(f"`n` must be a positive integer or None; found {n}. Pass 1 for no threads.")
    _chosen = n


def get_num_threads() -> int:
    """The number of threads klkit's numpy kernels use now.

    Returns
    -------
    int
        The value given to :func:`set_num_threads`, else ``KLKIT_NUM_THREADS``,
        else the CPUs available to this process capped by ``torch.get_num_threads()``
        when torch is imported.

    Raises
    ------
    ValueError
        If ``KLKIT_NUM_THREADS`` is set to anything but a positive integer.

    Examples
    --------
    >>> import klkit
    >>> klkit.get_num_threads() >= 1
    True
    """
    if _chosen is not None:
        return _chosen
    from_env = _from_env()
    if from_env is not None:
        return from_env
    return max(1, min(_available_cpus(), _torch_threads()))


def _from_env() -> int | None:
    """``KLKIT_NUM_THREADS`` as a positive integer, None when unset or empty."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"environment variable {ENV_VAR} must be a positive integer; found {raw!r}. "
            f"Set it to e.g. {ENV_VAR}=4, or unset it for the default (the CPUs available)."
        )
    return n


def _available_cpus() -> int:
    """The CPUs this process may run on (affinity mask), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _torch_threads() -> int:
    """``torch.get_num_threads()`` if torch is imported already, else a large number."""
    torch = sys.modules.get("torch")
    get = getattr(torch, "get_num_threads", None)
    return get() if get is not None else sys.maxsize


def parallel_map(fn: Callable[..., Any], *args: Sequence[Any]) -> list[Any]:
    """``[fn(*a) for a in zip(*args)]``, one task per thread of klkit's pool (in this thread if one task).

    Safe from any number of Python threads at once: each call holds the pool it uses until its
    tasks are done, and a pool replaced by a larger one is shut down only by its last user.
    """
    tasks = list(zip(*args, strict=True))
    if len(tasks) <= 1:
        return [fn(*a) for a in tasks]
    pool = _acquire(len(tasks))
    try:
        return list(pool.map(fn, *args))
    finally:
        _release(pool)


def _acquire(workers: int) -> ThreadPoolExecutor:
    """The current pool, grown to at least ``workers`` threads, marked as in use by one more call."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="klkit")
            _pool_size = workers
            _users[_pool] = 0
            if old is not None and _users.get(old) == 0:  # nobody uses it: its threads end now
                del _users[old]
                old.shutdown(wait=False)
        _users[_pool] += 1
        return _pool


def _release(pool: ThreadPoolExecutor) -> None:
    """One call is done with ``pool``; a replaced pool is shut down once no call uses it."""
    with _lock:
        _users[pool] -= 1
        if pool is not _pool and _users[pool] == 0:
            del _users[pool]
            pool.shutdown(wait=False)


def _after_fork_in_child() -> None:
    """The pool's threads do not exist in a forked child: forget the pool (and a lock a thread may hold)."""
    global _pool, _pool_size, _users, _lock
    _pool, _pool_size, _users, _lock = None, 0, {}, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
