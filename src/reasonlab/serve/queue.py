"""One thread owns the backend; requests wait in a bounded queue.

Why a single worker: a torch model (and our ``HFGenerator``'s static KV cache) is not
thread-safe, and on CPU two generations at once only fight over the same cores. Admission is
bounded (``capacity`` requests queued or running); beyond that ``submit`` raises ``QueueFull`` and
the server answers 503 at once, instead of letting latency grow without bound.

Continuous batching is out of scope, but plain generation requests that are waiting together
and share their sampling parameters (and have no seed, whose results must not depend on what
else is in the batch) are merged into one ``generate`` call: the backend decodes them as one
batch, which is several times faster than one after the other on a CPU.

Cancellation: a job whose caller gave up (timeout) is skipped if it has not started. A running
``generate`` cannot be interrupted (the protocol has no hook for it); it finishes and its result
is dropped, and it keeps counting against ``capacity`` until then.
"""

from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

from reasonlab.types import Prompt, SamplingParams


class QueueFull(RuntimeError):
    pass


@dataclass
class _GenJob:
    future: Future
    prompt: Prompt
    params: SamplingParams

    def joins(self, other: "_GenJob") -> bool:
        return self.params.seed is None and other.params == self.params


@dataclass
class _CallJob:
    future: Future
    fn: Callable[[], Any]


class BackendWorker:
    """``submit_generate(prompt, params)`` / ``submit(fn)`` -> ``concurrent.futures.Future``."""

    def __init__(self, backend, capacity: int = 16, max_batch_rows: int = 32):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.backend = backend
        self.capacity = capacity
        self.max_batch_rows = max_batch_rows
        self._inbox: queue.Queue = queue.Queue()
        self._held: collections.deque = collections.deque()  # taken from the inbox, not yet run
        self._lock = threading.Lock()
        self._pending = 0
        self.running = 0
        self.batches = 0  # generate calls made (a merged batch counts once)
        self._thread = threading.Thread(target=self._loop, name="reasonlab-serve-worker", daemon=True)
        self._thread.start()

    # ---- producer side (event loop thread) ----
    def submit_generate(self, prompt: Prompt, params: SamplingParams) -> Future:
        return self._admit(lambda fut: _GenJob(fut, prompt, params))

    def submit(self, fn: Callable[[], Any]) -> Future:
        return self._admit(lambda fut: _CallJob(fut, fn))

    def _admit(self, make) -> Future:
        with self._lock:
            if self._pending >= self.capacity:
                raise QueueFull(f"server busy: {self._pending} requests queued or running "
                                f"(max-concurrency {self.capacity}); retry later")
            self._pending += 1
        fut: Future = Future()
        fut.add_done_callback(self._release)  # runs on result, error or cancel
        self._inbox.put(make(fut))
        return fut

    def _release(self, _fut: Future) -> None:
        with self._lock:
            self._pending -= 1

    @property
    def pending(self) -> int:
        return self._pending

    def close(self, timeout: float = 5.0) -> None:
        self._inbox.put(None)
        self._thread.join(timeout)

    # ---- consumer side (worker thread) ----
    def _loop(self) -> None:
        while True:
            if not self._held:
                item = self._inbox.get()
                if item is None:
                    return
                self._held.append(item)
            self._drain_inbox()
            job = self._held.popleft()
            if isinstance(job, _CallJob):
                self._run_call(job)
            else:
                self._run_batch(self._gather(job))

    def _drain_inbox(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is None:  # close(): finish what is held, then stop
                self._inbox.put(None)
                return
            self._held.append(item)

    def _gather(self, head: _GenJob) -> list[_GenJob]:
        """The head job plus held jobs it can share one ``generate`` call with."""
        batch, rows = [head], head.params.n
        if head.params.seed is None:
            for job in list(self._held):
                if isinstance(job, _GenJob) and head.joins(job) and rows + job.params.n <= self.max_batch_rows:
                    batch.append(job)
                    rows += job.params.n
                    self._held.remove(job)
        return [j for j in batch if j.future.set_running_or_notify_cancel()]

    def _run_call(self, job: _CallJob) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        self.running += 1
        try:
            job.future.set_result(job.fn())
        except BaseException as exc:  # noqa: BLE001  (handed to the waiting request)
            job.future.set_exception(exc)
        finally:
            self.running -= 1

    def _run_batch(self, batch: list[_GenJob]) -> None:
        if not batch:
            return
        self.running += len(batch)
        try:
            out = self.backend.generate([j.prompt for j in batch], batch[0].params)
            self.batches += 1
            for job, completions in zip(batch, out, strict=True):
                job.future.set_result(completions)
        except BaseException as exc:  # noqa: BLE001
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            self.running -= len(batch)
