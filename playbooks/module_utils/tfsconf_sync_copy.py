"""The copying half of tfsconf_model_sync's Syncer (tfsconf_sync_publish.py): the files of
a version copied a few at once, each read, hashed and written chunk by chunk, so that the
digest is of exactly the bytes written. Runs on the serving host (stdlib only)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Callable

from ansible.module_utils.tfsconf_sync_files import (
    DISK_FULL,
    Cancelled,
    DiskFull,
    Entry,
    RangeHasher,
    Throttle,
    new_md5,
)


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, DiskFull) or (isinstance(error, OSError) and error.errno in DISK_FULL)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ParallelCopy:
    """Copy state shared by the files of one version: how many go at once, how many are
    in flight, and the flag that stops them all when one fails."""

    chunk: int
    throttle: Throttle

    def init_copy(self, rate: int) -> None:
        # set when one file of the version failed: the others stop copying
        self.cancelled = threading.Event()
        # files copied at once: two, which keep two cores busy; one under a bandwidth
        # limit (a single token bucket). The serving host's other cores are its server's.
        self.cores = usable_cores()
        self.workers = 1 if rate > 0 else min(2, self.cores)
        self.flight = threading.Lock()
        self.in_flight = 0  # files being copied now

    def copy_stream(
        self, entry: Entry, stream: io.BufferedIOBase, fd: int, read_back: RangeHasher | None
    ) -> tuple[str, int, str | None]:
        """Read the source into fd chunk by chunk, each chunk hashed (sha256, and md5 for an
        MD5SUMS source) as it is written; (sha256, size, md5 or None). While more cores
        than files are at work each digest has a thread of its own, hashing one buffer
        while the next is read and written (the hashing is the costliest part); otherwise
        hashing in line costs less (the chunk is still in this core's cache)."""
        hashers = [hashlib.sha256()] + ([new_md5()] if entry.md5 is not None else [])
        pools = [ThreadPoolExecutor(1, thread_name_prefix="tfsconf-hash") for _ in hashers]
        buffers = [bytearray(self.chunk) for _ in range(3)]
        pending: list[list[Future[None]]] = [[] for _ in buffers]
        size = 0
        with self.flight:
            self.in_flight += 1
        try:
            turn = 0
            while True:
                for done in pending[turn]:  # the buffer is free once hashed
                    done.result()
                pending[turn] = []
                if self.cancelled.is_set():
                    raise Cancelled
                n = stream.readinto(buffers[turn])
                if not n:
                    break
                view = memoryview(buffers[turn])[:n]
                if 2 * self.in_flight <= self.cores:
                    pending[turn] = [p.submit(h.update, view) for p, h in zip(pools, hashers)]
                else:
                    for futures in pending:  # in order: what the threads have comes first
                        for done in futures:
                            done.result()
                    for hasher in hashers:
                        hasher.update(view)
                written = 0
                while written < n:
                    written += os.write(fd, view[written:])
                size += n
                self.throttle.consume(n)
                if read_back is not None:
                    read_back.extend(size)
                turn = (turn + 1) % len(buffers)
            for futures in pending:
                for done in futures:
                    done.result()
            os.fsync(fd)
        finally:
            with self.flight:
                self.in_flight -= 1
            for pool in pools:
                pool.shutdown(wait=True)
        md5 = hashers[1].hexdigest() if len(hashers) > 1 else None
        return hashers[0].hexdigest(), size, md5

    def stage_files(
        self, entries: list[Entry], stage_file: Callable[[Entry], tuple[str, int, bool]]
    ) -> list[tuple[str, int, bool]]:
        """stage_file of every entry, self.workers at a time. When one fails the others
        stop (Cancelled) and none is started; the error raised is a full disk if one
        was met, else that of the first failed entry in the listing's order, as when they
        are staged one by one."""
        if self.workers == 1:
            return [stage_file(entry) for entry in entries]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="tfsconf-stage") as pool:
            futures = [pool.submit(stage_file, entry) for entry in entries]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:
                if not all(future.done() for future in futures):  # a failure, or interrupted
                    self.cancelled.set()
                    for future in futures:
                        future.cancel()
        errors = [
            error
            for error in (None if f.cancelled() else f.exception() for f in futures)
            if error is not None and not isinstance(error, Cancelled)
        ]
        if errors:  # a full disk first: its space is given back
            raise min(errors, key=lambda error: not is_disk_full(error))
        return [future.result() for future in futures]
