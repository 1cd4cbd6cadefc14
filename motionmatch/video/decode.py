"""The one small decoding interface: probe a video, read chosen frames, get their real timestamps.

Two backends sit behind the same functions:

* ``"decord"`` (the maintained ``decord2`` package, imported as ``decord``): random access with
  ``get_batch``; preferred when importable.
* ``"pyav"`` (PyAV): decodes sequentially, keeps only the requested frames and stops after the
  last one. Always available; also the fallback whenever decord rejects or mis-decodes a file.

``MOTIONMATCH_DECODER=decord|pyav`` overrides the default chosen at import (:data:`DEFAULT_BACKEND`).

Every file is first checked cheaply (``os.stat``, a read of its first bytes, a PyAV header parse
and one decoded frame) so that garbage never reaches decord, which can crash or hang on it.
Every failure raises :class:`~motionmatch.errors.VideoError` naming the file and the reason.

Conventions shared by both backends:

* frames are ``uint8`` RGB, shape ``(n, H, W, 3)``, in the order of the requested indices
  (repeats allowed); frame ``i`` is the ``i``-th frame in presentation order;
* timestamps are seconds from the start of the first frame (so frame 0 is at 0.0), read from the
  container's presentation timestamps, so variable frame rate is handled;
* a display rotation stored in the container (phone videos) is applied, in multiples of 90°, and
  :class:`VideoInfo` reports the displayed width and height.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import stat
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..errors import ParameterError, VideoError
from ..validation import check_scalar

logger = logging.getLogger(__name__)

BACKENDS = ("decord", "pyav")  # in preference order
DECODER_ENV_VAR = "MOTIONMATCH_DECODER"
_SNIFF_BYTES = 4096  # bytes read up front to tell a text file from a container


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, as the chosen backend reports it."""

    path: str  # the file, as given
    num_frames: int  # frames in presentation order
    fps: float  # average frame rate (frames / duration for variable frame rate)
    width: int  # displayed width in pixels (after rotation)
    height: int  # displayed height in pixels (after rotation)
    duration_s: float  # from the start of the first frame to the end of the last
    backend: str  # "decord" or "pyav": the backend that produced this info


@functools.lru_cache(maxsize=1)
def _decord_importable() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:  # noqa: BLE001 - missing wheel, broken shared library, ...
        return False
    return True


def available_backends() -> list[str]:
    """Backends that can be imported here, in preference order (e.g. ``["decord", "pyav"]``)."""
    return [name for name in BACKENDS if name != "decord" or _decord_importable()]


def _choose_default_backend() -> str:
    available = available_backends()
    wanted = os.environ.get(DECODER_ENV_VAR, "").strip().lower()
    if wanted and wanted not in available:
        warnings.warn(f"{DECODER_ENV_VAR}={wanted!r} is not one of the available backends {available}; "
                      f"using {available[0]!r}. Unset the variable or install the backend.", stacklevel=2)
        wanted = ""
    return wanted or available[0]


DEFAULT_BACKEND: str = _choose_default_backend()


def _resolve_backend(backend: str | None) -> str:
    if backend is None:
        return DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ParameterError(f"backend={backend!r} is unknown; use one of {list(BACKENDS)} or None for the default")
    if backend not in available_backends():
        raise ParameterError(f"backend={backend!r} cannot be imported here; available: {available_backends()}")
    return backend


# ----------------------------------------------------------------------------- cheap up-front checks
def _check_file(path: str) -> None:
    """Raise VideoError for a path that cannot be a readable video, without calling a decoder."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise VideoError(path, "file not found", hint="check the path (and the manifest's folder for relative paths)") from None
    except PermissionError:
        raise VideoError(path, "permission denied on the path", hint="fix the permissions (chmod +r) or run as a user who may read it") from None
    except OSError as err:
        raise VideoError(path, f"cannot stat the file ({err.strerror})") from None
    if stat.S_ISDIR(status.st_mode):
        raise VideoError(path, "is a directory, not a video file", hint="point at the video files inside it, or rename the folder")
    if not stat.S_ISREG(status.st_mode):
        raise VideoError(path, "is not a regular file (device, socket or pipe)", hint="copy the video to a regular file")
    if status.st_size == 0:
        raise VideoError(path, "file is empty (0 bytes)", hint="the download or copy probably failed; fetch the file again or remove it")
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except PermissionError:
        raise VideoError(path, "permission denied (cannot read the file)", hint="fix the permissions (chmod +r) or run as a user who may read it") from None
    except OSError as err:
        raise VideoError(path, f"cannot read the file ({err.strerror})") from None
    if _looks_like_text(head):
        raise VideoError(path, "not a video: the file holds text", hint="the file is probably an error page or a placeholder; fetch the real video or remove it")


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_mp4_family(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


@dataclass
class _Header:
    """What PyAV reads from the container plus one decoded frame (cheap)."""

    num_frames: int  # from the container index; 0 when the container does not say
    fps: float
    width: int  # coded width
    height: int  # coded height
    rotation: int  # display rotation, degrees counter-clockwise, multiple of 90


def _open_container(path: str):
    import av

    try:
        return av.open(path)
    except Exception as err:  # noqa: BLE001 - av.error.* or OSError
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        if _is_mp4_family(head):
            raise VideoError(path, f"truncated or corrupt MP4: the container cannot be parsed ({err})",
                             hint="the copy was probably cut short; fetch the file again or re-encode it") from None
        raise VideoError(path, f"not a video: no decoder recognises the format ({err})") from None


def _video_stream(container, path: str):
    if not container.streams.video:
        if container.streams.audio:
            raise VideoError(path, "audio only: the file has no video stream", hint="use a file with a video track, or remove it")
        raise VideoError(path, "no video stream in the file")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _read_header(path: str) -> _Header:
    """Parse the container with PyAV and decode its first frame: validates the file for either backend."""
    container = _open_container(path)
    try:
        stream = _video_stream(container, path)
        try:
            first = next(container.decode(stream), None)
        except Exception as err:  # noqa: BLE001
            raise VideoError(path, f"truncated or corrupt: the first frame cannot be decoded ({err})") from None
        if first is None:
            raise VideoError(path, "0 frames: the video stream holds no decodable frame", hint="the file is truncated or empty; re-encode or remove it")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        rotation = int(round(float(getattr(first, "rotation", 0) or 0) / 90.0)) * 90 % 360
        return _Header(num_frames=int(stream.frames or 0), fps=float(rate) if rate else 0.0,
                       width=first.width, height=first.height, rotation=rotation)
    finally:
        container.close()


def _rotate(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a counter-clockwise display rotation to (n, H, W, 3) frames (as ffmpeg's autorotate does)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frames, k=turns, axes=(1, 2))) if turns else frames


def _check_indices(path: str, indices: Sequence[int], num_frames: int) -> np.ndarray:
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= num_frames):
        raise ParameterError(f"frame indices for {path} must lie in [0, {num_frames - 1}]; "
                             f"got {int(wanted.min())}..{int(wanted.max())}")
    return wanted


# ----------------------------------------------------------------------------- readers
class _PyAVReader:
    """Sequential PyAV decoding of one file; memory holds only the requested frames."""

    backend = "pyav"

    def __init__(self, path: str, header: _Header):
        self.path, self.header = path, header
        self._starts: np.ndarray | None = None
        self._duration_s: float | None = None

    def _scan_timestamps(self) -> None:
        """Demux (without decoding) to collect every frame's presentation time."""
        container = _open_container(self.path)
        try:
            stream = _video_stream(container, self.path)
            time_base = float(stream.time_base)
            pts, ends = [], []
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                ends.append(packet.pts + (packet.duration or 0))
        except VideoError:
            raise
        except Exception as err:  # noqa: BLE001
            raise VideoError(self.path, f"truncated or corrupt: demuxing failed ({err})") from None
        finally:
            container.close()
        if not pts:
            raise VideoError(self.path, "0 frames: the video stream holds no packets")
        order = np.sort(np.asarray(pts, dtype=np.int64))
        first = order[0]
        self.first_pts = int(first)  # the stream's first presentation time, in time_base units
        self._starts = (order - first) * time_base
        last_end = max(ends)
        if last_end <= order[-1]:  # no packet durations: assume one average frame interval
            step = 1.0 / self.header.fps if self.header.fps > 0 else 0.0
            self._duration_s = float(self._starts[-1] + step)
        else:
            self._duration_s = float((last_end - first) * time_base)

    def timestamps(self) -> np.ndarray:
        if self._starts is None:
            self._scan_timestamps()
        return self._starts

    def info(self) -> VideoInfo:
        num_frames, fps = self.header.num_frames, self.header.fps
        if num_frames <= 0 or fps <= 0:  # the container does not say: count the packets
            num_frames = len(self.timestamps())
            fps = fps if fps > 0 else (num_frames / self._duration_s if self._duration_s else 0.0)
        duration = self._duration_s if self._duration_s is not None else (num_frames / fps if fps > 0 else 0.0)
        width, height = self.header.width, self.header.height
        if self.header.rotation in (90, 270):
            width, height = height, width
        return VideoInfo(self.path, int(num_frames), float(fps), int(width), int(height), float(duration), self.backend)

    def read(self, indices: np.ndarray) -> np.ndarray:
        header = self.header
        out = np.empty((len(indices), header.height, header.width, 3), dtype=np.uint8)
        if len(indices) == 0:
            return _rotate(out, header.rotation)
        positions: dict[int, list[int]] = {}
        for position, index in enumerate(indices.tolist()):
            positions.setdefault(index, []).append(position)
        last_needed = max(positions)
        decoded = -1
        container = _open_container(self.path)
        try:
            stream = _video_stream(container, self.path)
            for decoded, frame in enumerate(container.decode(stream)):
                if decoded in positions:
                    image = frame.to_ndarray(format="rgb24")
                    if image.shape[:2] != out.shape[1:3]:  # resolution change mid-stream
                        frame = frame.reformat(width=header.width, height=header.height)
                        image = frame.to_ndarray(format="rgb24")
                    for position in positions[decoded]:
                        out[position] = image
                if decoded >= last_needed:
                    break
        except Exception as err:  # noqa: BLE001
            raise VideoError(self.path, f"truncated or corrupt: decoding failed after frame {decoded} ({err})") from None
        finally:
            container.close()
        if decoded < last_needed:
            raise VideoError(self.path, f"truncated or corrupt: frame {last_needed} was asked for but only "
                             f"{decoded + 1} frames could be decoded")
        return _rotate(out, header.rotation)


class _DecordReader:
    """decord random access (``get_batch``) on a file PyAV has already validated."""

    backend = "decord"

    def __init__(self, path: str, header: _Header):
        import decord

        self.path, self.header = path, header
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
        self._num_frames = len(self._reader)

    def timestamps(self) -> np.ndarray:
        spans = np.asarray(self._reader.get_frame_timestamp(np.arange(self._num_frames)), dtype=np.float64)
        return spans[:, 0] - spans[0, 0]

    def _spans(self, indices) -> np.ndarray:
        return np.asarray(self._reader.get_frame_timestamp(list(indices)), dtype=np.float64).reshape(-1, 2)

    def info(self) -> VideoInfo:
        first, last = self._spans([0, self._num_frames - 1])
        duration = float(last[1] - first[0])
        fps = float(self._reader.get_avg_fps() or self.header.fps)
        if fps <= 0 and duration > 0:
            fps = self._num_frames / duration
        width, height = self.header.width, self.header.height
        if self.header.rotation in (90, 270):
            width, height = height, width
        return VideoInfo(self.path, self._num_frames, fps, width, height, duration, self.backend)

    def read(self, indices: np.ndarray) -> np.ndarray:
        header = self.header
        if len(indices) == 0:
            return _rotate(np.empty((0, header.height, header.width, 3), dtype=np.uint8), header.rotation)
        unique, inverse = np.unique(indices, return_inverse=True)
        batch = self._reader.get_batch(unique.tolist()).asnumpy()
        if batch.shape != (len(unique), header.height, header.width, 3):
            raise _DecordMisread(f"decord returned frames of shape {batch.shape}, expected "
                                 f"{(len(unique), header.height, header.width, 3)}")
        if len(unique) != len(indices) or np.any(unique != indices):  # repeats or unsorted: reorder (copies)
            batch = batch[inverse.reshape(-1)]
        return _rotate(batch, header.rotation)


class _DecordMisread(RuntimeError):
    """decord returned frames of the wrong shape.

    decord2 3.4 returns row-padded ``(H, W, 4)`` frames (and ``get_batch`` fails) for some frame
    widths (16, 24, 32, 48, 96, 144, ...); such reads are retried with PyAV.
    """


class OpenedVideo:
    """One checked video file, for callers that need several answers from one open (e.g. ``sample_clips``).

    ``info()``, ``timestamps()`` (start of every frame, seconds) and ``read(indices)`` behave as
    :func:`probe_video`, :func:`frame_timestamps` and :func:`read_frames`. When decord fails on
    a read, the read is retried with PyAV before a VideoError is raised.
    """

    def __init__(self, path: str | os.PathLike, backend: str | None = None):
        chosen = _resolve_backend(backend)
        self.path = os.fspath(path)
        _check_file(self.path)
        self._header = _read_header(self.path)
        self._reader: _DecordReader | _PyAVReader | None = None
        if chosen == "decord":
            try:
                self._reader = _DecordReader(self.path, self._header)
            except Exception as err:  # noqa: BLE001 - DECORDError, RuntimeError, AssertionError
                logger.info("decord cannot open %s (%s); falling back to PyAV", self.path, err)
        if self._reader is None:
            self._reader = _PyAVReader(self.path, self._header)

    @property
    def backend(self) -> str:
        """The backend now in use ("decord" or "pyav")."""
        return self._reader.backend

    def info(self) -> VideoInfo:
        return self._reader.info()

    def timestamps(self) -> np.ndarray:
        return self._reader.timestamps()

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _check_indices(self.path, indices, self.info().num_frames)
        try:
            return self._reader.read(wanted)
        except (VideoError, ParameterError):
            raise
        except Exception as err:  # noqa: BLE001 - decord errors: retry with PyAV before giving up
            if self._reader.backend != "decord":
                raise VideoError(self.path, f"decoding failed ({type(err).__name__}: {err})") from None
            logger.info("decord failed on %s (%s); retrying with PyAV", self.path, err)
            self._reader = _PyAVReader(self.path, self._header)
            return self._reader.read(wanted)


@dataclass(frozen=True)
class FrameChunk:
    """Consecutive frames of one video, as :func:`iter_frames` yields them."""

    start_index: int  # presentation-order index of ``frames[0]``
    frames: np.ndarray  # (n, H, W, 3) uint8 RGB, display rotation applied
    timestamps: np.ndarray  # (n,) float64 start of each frame, seconds from the first frame (real timestamps)
    small: np.ndarray | None = None  # (n, h, w, 3) uint8 RGB at iter_frames' ``small_size``, rotation not applied


def iter_frames(path: str | os.PathLike, chunk_frames: int = 64, start_frame: int = 0,
                small_size: tuple[int, int] | None = None, opened: "OpenedVideo | None" = None
                ) -> Iterator[FrameChunk]:
    """Every frame of ``path`` from ``start_frame`` on, in presentation order, ``chunk_frames`` at a time.

    ``small_size`` ``(width, height)``: each chunk also holds the frames scaled to that size straight from the
    decoder (bicubic, as a shot detector's reference ffmpeg pipeline scales them), in ``FrameChunk.small``.

    One sequential PyAV decode loop (no seek per window, one seek to the keyframe before
    ``start_frame`` when resuming), so memory holds one chunk however long the video is. Frame
    indices and timestamps agree with :meth:`OpenedVideo.timestamps` (the demuxed packets'
    presentation times). Raises VideoError for a file that cannot be read or breaks off early.

    ``opened``: the same file opened with PyAV (``open_video(path, "pyav")``, as
    :func:`~motionmatch.video.clips.open_with_timestamps` does for a query): its header and demuxed timestamps
    are used, not read again; the decode is then the file's only other pass.
    """
    import av

    chunk_frames = check_scalar(chunk_frames, "chunk_frames", int, min_value=1)
    start_frame = check_scalar(start_frame, "start_frame", int, min_value=0)
    path = os.fspath(path)
    if opened is not None and (opened.path != path or opened.backend != "pyav"):
        raise ParameterError(f"iter_frames(opened=...) needs {path} opened with PyAV (open_video(path, 'pyav')), got "
                             f"{opened.path} on {opened.backend}")
    if opened is None:
        _check_file(path)
        header = _read_header(path)
        reader = _PyAVReader(path, header)
    else:
        header, reader = opened._header, opened._reader
    starts = reader.timestamps()
    if start_frame >= len(starts):
        return
    container = _open_container(path)
    index = -1
    try:
        stream = _video_stream(container, path)
        time_base = float(stream.time_base)
        first_pts = reader.first_pts
        if start_frame > 0:  # back to the keyframe at or before start_frame, then decode forward
            container.seek(first_pts + int(round(float(starts[start_frame]) / time_base)), stream=stream,
                           backward=True, any_frame=False)
        frames, smalls, stamps, chunk_start = [], [], [], None

        def chunk() -> FrameChunk:
            return FrameChunk(chunk_start, _rotate(np.stack(frames), header.rotation), np.asarray(stamps),
                              np.stack(smalls) if smalls else None)

        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            seconds = (int(frame.pts) - first_pts) * time_base
            index = int(np.searchsorted(starts, seconds - 1e-6))
            if index < start_frame:
                continue
            if index >= len(starts):
                break
            image = frame.to_ndarray(format="rgb24")
            if image.shape[:2] != (header.height, header.width):  # resolution change mid-stream
                image = frame.reformat(width=header.width, height=header.height).to_ndarray(format="rgb24")
            if chunk_start is None:
                chunk_start = index
            frames.append(image)
            if small_size is not None:
                smalls.append(frame.reformat(width=small_size[0], height=small_size[1], format="rgb24",
                                             interpolation="BICUBIC").to_ndarray())
            stamps.append(float(starts[index]))
            if len(frames) == chunk_frames:
                yield chunk()
                frames, smalls, stamps, chunk_start = [], [], [], None
        if frames:
            yield chunk()
    except VideoError:
        raise
    except Exception as err:  # noqa: BLE001
        raise VideoError(path, f"truncated or corrupt: decoding failed after frame {index} ({err})") from None
    finally:
        container.close()
    if index < len(starts) - 1:
        raise VideoError(path, f"truncated or corrupt: the file lists {len(starts)} frames but only {index + 1} "
                               "could be decoded", hint="re-encode the file or remove it")


def open_video(path: str | os.PathLike, backend: str | None = None) -> OpenedVideo:
    """Check ``path`` and open it with ``backend`` (default :data:`DEFAULT_BACKEND`); raises VideoError."""
    return OpenedVideo(path, backend)


# ----------------------------------------------------------------------------- public functions
def probe_video(path: str | os.PathLike, backend: str | None = None) -> VideoInfo:
    """Frame count, frame rate, displayed size and duration of ``path``; raises VideoError."""
    return open_video(path, backend).info()


def read_frames(path: str | os.PathLike, indices: Sequence[int], backend: str | None = None) -> np.ndarray:
    """Decode only the frames at ``indices`` (any order, repeats allowed) -> ``(n, H, W, 3)`` uint8 RGB."""
    return open_video(path, backend).read(indices)


def frame_timestamps(path: str | os.PathLike, indices: Sequence[int], backend: str | None = None) -> np.ndarray:
    """Start time in seconds (first frame = 0) of each frame at ``indices``, from the container's timestamps."""
    video = open_video(path, backend)
    starts = video.timestamps()
    wanted = _check_indices(video.path, indices, len(starts))
    return starts[wanted].astype(np.float64)


def fingerprint_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """A content fingerprint: sha1 of the size plus the first and last ``chunk`` bytes.

    Cheap on large files and changes whenever a file is replaced or re-encoded, so extraction can
    tell a changed video from an unchanged one without hashing every byte.
    """
    path = os.fspath(path)
    _check_file_exists_for_fingerprint(path)
    size = os.path.getsize(path)
    digest = hashlib.sha1(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(chunk))
        if size > chunk:
            handle.seek(max(chunk, size - chunk))
            digest.update(handle.read(chunk))
    return digest.hexdigest()


def _check_file_exists_for_fingerprint(path: str) -> None:
    if not os.path.exists(path):
        raise VideoError(path, "file not found", hint="check the path (and the manifest's folder for relative paths)")
    if os.path.isdir(path):
        raise VideoError(path, "is a directory, not a video file", hint="point at the video files inside it, or rename the folder")
    if not stat.S_ISREG(os.stat(path).st_mode):  # opening a FIFO for reading would block forever
        raise VideoError(path, "is not a regular file (device, socket or pipe)", hint="copy the video to a regular file")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "permission denied (cannot read the file)", hint="fix the permissions (chmod +r)")


__all__ = ["VideoInfo", "OpenedVideo", "FrameChunk", "iter_frames", "DEFAULT_BACKEND", "open_video", "available_backends", "probe_video", "read_frames",
           "frame_timestamps", "fingerprint_file"]
