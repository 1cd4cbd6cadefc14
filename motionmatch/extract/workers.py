"""Decoding ahead of the encoder in worker processes, with a bounded window, losing only the video whose decoder
crashes its worker (the local path of :mod:`motionmatch.extract.local`)."""
from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, Sequence

from ..errors import ParameterError
from ..video.clips import ClipSpec, sample_clips
from ..video.decode import fingerprint_file
from .parts import decode_failure


def decode_job(path: str, spec: ClipSpec) -> tuple[str, str, list, list | None, str | None]:
    """Runs in a worker process: fingerprint + decode one video's clips."""
    try:
        fingerprint = fingerprint_file(path)
        clips = sample_clips(path, spec)
        windows = [c.window for c in clips]
        frames = [c.frames for c in clips]
        return path, fingerprint, windows, frames, None
    except Exception as err:  # a decoder crash must not stop the run
        return path, "", [], None, decode_failure(err)


def _workers_can_start(workers: int, context) -> bool:
    """Whether a fresh pool's worker processes can run a trivial job at all."""
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pool.submit(os.getpid).result()
        return True
    except BrokenProcessPool:
        return False


WORKER_DIED = ("the decode worker process died while decoding this file (a decoder crash or out of memory)"
               "|re-encode the file (e.g. ffmpeg -i in.mp4 -c:v libx264 out.mp4) or remove it")


def _submit(pool: ProcessPoolExecutor, pending: list, job, path: str, spec: ClipSpec) -> bool:
    """Queue one video on the pool; False when the pool is already broken (a worker died since the last result).

    The broken pool then shows at this submission rather than at a result; the video was never started, so
    the caller puts it back, and the futures in flight report the breakage as usual.
    """
    try:
        pending.append((path, pool.submit(job, path, spec)))
        return True
    except BrokenProcessPool:
        return False


def iter_decoded(paths: Sequence[str], spec: ClipSpec, workers: int, prefetch: int,
                  job=decode_job) -> Iterator[tuple]:
    """Decode videos ahead of the encoder, in worker processes, with a bounded window.

    At most ``prefetch`` decoded videos are held at once, so memory stays flat however
    large the folder is. A worker that dies (a decoder crash, the kernel's OOM killer) costs
    only the video it was decoding: the pool is restarted, the videos that were in flight are
    decoded again one at a time to find the one that kills its worker, that one is reported as
    failed and the others carry on. Workers that cannot start at all (a script without a
    ``__main__`` guard) raise ParameterError with what to do.
    ``job`` (a picklable ``(path, spec) -> tuple``) is the per-video work; tests inject faults through it.
    """
    if workers <= 0:
        for path in paths:
            yield job(path, spec)
        return
    import multiprocessing

    # spawn, not fork: forking a process that already runs torch's thread pools can deadlock.
    context = multiprocessing.get_context("spawn")
    queue = list(paths)
    isolate: list[str] = []  # in flight when a pool broke: retried alone, one at a time
    checked_start = False
    while queue or isolate:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: list[tuple[str, Future]] = []
            solo = False
            broken = False
            while queue or isolate or pending:
                if not pending:
                    solo = bool(isolate)
                    if solo:
                        path = isolate.pop(0)
                        if not _submit(pool, pending, job, path, spec):
                            isolate.insert(0, path)
                if not solo:
                    while queue and len(pending) < prefetch:
                        path = queue.pop(0)
                        if not _submit(pool, pending, job, path, spec):  # broke since the last result: not started
                            queue.insert(0, path)
                            break
                if not pending:  # the pool broke with nothing in flight: start a new one
                    broken = True
                    break
                path, done = pending.pop(0)
                try:
                    result = done.result()
                except BrokenProcessPool as err:
                    broken = True
                    if not checked_start:
                        checked_start = True
                        if not _workers_can_start(workers, context):
                            raise ParameterError(
                                "the decode worker processes cannot start. They are started with 'spawn', which "
                                "re-imports the calling script: in a script, call extraction under "
                                "`if __name__ == \"__main__\":`, or pass workers=0 (decode in this process). "
                                f"Finished videos are kept; run again to resume. ({err})") from err
                    if solo:
                        yield (path, "", [], None, WORKER_DIED)
                    else:
                        isolate.extend([path] + [p for p, _ in pending])
                    break
                yield result
            if not broken:
                return


def default_decode_workers() -> int:
    """Decode worker processes to run by default: CPU cores - 2, at most 4.

    On a 2-core machine this is 0: torch's threads already use both cores, and `make bench`
    measured extraction 1.74x faster than the naive path with one worker against 2.26x with
    decoding inline. With cores to spare (a GPU machine) workers overlap decoding with the model.
    """
    return max(0, min(4, (os.cpu_count() or 1) - 2))


def parse_workers(value) -> int | None:
    """A ``workers`` setting as a notebook parameter or ``--workers`` gives it: ``"auto"`` (or None, or "") ->
    None, which :func:`motionmatch.extract.extract_embeddings` reads as :func:`default_decode_workers`; else a
    whole number >= 0 (0 decodes inline), given as an int or as its digits."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    if isinstance(value, bool) or isinstance(value, float):
        workers = -1
    else:
        try:
            workers = int(str(value).strip())
        except ValueError:
            workers = -1
    if workers < 0:
        raise ParameterError(f"workers must be \"auto\" or a whole number >= 0 (0 decodes inline), got {value!r}")
    return workers


__all__ = ["WORKER_DIED", "decode_job", "iter_decoded", "default_decode_workers", "parse_workers"]
