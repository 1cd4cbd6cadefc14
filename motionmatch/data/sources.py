"""Dataset adapters and sources: what the user points at -> the manifest DataFrame (path, label, domain, group, split).

:func:`load_source` turns a folder, a manifest CSV or a named dataset into a manifest;
:func:`discover_videos` walks a folder without ever stopping on an odd entry (each becomes a
:class:`Failure`).

``group`` marks clips that share a source (same long video, actor, background): evaluation
excludes a query's whole group so near-duplicates cannot pass for retrieval.
``split`` comes from the official split files ("train", "test", ...; "" when unknown).
Problems that do not stop loading (list entries without a file, files in no list) are
warned about and listed in ``manifest.attrs["missing"]`` / ``manifest.attrs["unlisted"]``.

Where to get the real data
--------------------------
* UCF101: https://www.crcv.ucf.edu/data/UCF101.php — ``UCF101.rar`` (unpacks to ``UCF-101/``)
  and "The Train/Test Splits for Action Recognition" zip (unpacks to ``ucfTrainTestlist/``).
  Put both in one folder and pass that folder as ``root``.
* HMDB51: https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/ —
  the videos (one ``.rar`` per class, unpack each into ``root/<class>/``) and the
  "three splits" archive (unpacks to ``testTrainMulti_7030_splits/``, put it in ``root``).
* Kinetics: https://github.com/cvdfoundation/kinetics-dataset — its download scripts give the
  annotation CSVs (``train.csv``, ``val.csv``, ``test.csv``) and videos named
  ``<youtube_id>_<start:06d>_<end:06d>.mp4``.
"""
from __future__ import annotations

import inspect
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..config import VIDEO_EXTENSIONS
from ..errors import ParameterError
from ..table import MANIFEST_COLUMNS, REQUIRED_MANIFEST_COLUMNS
from ..validation import check_choice, check_scalar

UCF101_URL = "https://www.crcv.ucf.edu/data/UCF101.php"
HMDB51_URL = "https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/"
KINETICS_URL = "https://github.com/cvdfoundation/kinetics-dataset"
UCF101_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$", re.IGNORECASE)
# HMDB51 names: <source>_<action>_<body part>_<camera motion>_<people>_<viewpoint>_<quality>_<clip number>
HMDB51_META = re.compile(r"_[fhul]_(?:cm|nm)_np\d+_(?:fr|ba|le|ri)_(?:bad|med|goo)_\d+$", re.IGNORECASE)
FOLDER_GROUP = re.compile(r"^(?:v_)?(?P<prefix>.*_g\d+)_", re.IGNORECASE)
HMDB51_SPLIT_IDS = {"0": "unused", "1": "train", "2": "test"}


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).astype(str)


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _check_split_number(split: Any, choices: tuple[int, ...]) -> int:
    return check_choice(check_scalar(split, "split", int), "split", choices)  # the official split number


def _warn_listing(manifest: pd.DataFrame, missing: list[str], unlisted: list[str], where: str) -> pd.DataFrame:
    manifest.attrs["missing"] = missing
    manifest.attrs["unlisted"] = unlisted
    if missing:
        warnings.warn(f"{where}: {len(missing)} listed video(s) have no file, e.g. {missing[:3]} — "
                      "the download may be incomplete", stacklevel=3)
    if unlisted:
        warnings.warn(f"{where}: {len(unlisted)} video(s) are in no split file, e.g. {unlisted[:3]}; "
                      "their split is ''", stacklevel=3)
    return manifest


# ----------------------------------------------------------------------------- UCF101
def read_ucf101_class_index(path: str | Path) -> dict[int, str]:
    """``classInd.txt`` ("1 ApplyEyeMakeup" per line) -> {1: "ApplyEyeMakeup", ...}."""
    classes: dict[int, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        index, _, name = line.strip().partition(" ")
        if not index.isdigit() or not name.strip():
            raise ParameterError(f"{path}:{number}: expected '<index> <ClassName>', got {line!r}")
        classes[int(index)] = name.strip()
    return classes


def _read_ucf101_list(path: Path) -> list[str]:
    """Relative video paths ("Class/v_Class_gGG_cCC.avi") of a trainlist/testlist file."""
    return [line.split()[0].replace("\\", "/") for line in path.read_text().splitlines() if line.strip()]


def _ucf101_dirs(root: Path) -> tuple[Path, Path]:
    if (root / "UCF-101").is_dir():
        videos = root / "UCF-101"
    elif root.is_dir() and root.name == "UCF-101":
        videos = root
    else:
        raise ParameterError(f"{root} has no UCF-101/ folder — unpack UCF101.rar from {UCF101_URL} there, "
                             "or pass the UCF-101 folder itself")
    for candidate in (videos.parent / "ucfTrainTestlist", videos / "ucfTrainTestlist", root / "ucfTrainTestlist"):
        if candidate.is_dir():
            return videos, candidate
    raise ParameterError(f"no ucfTrainTestlist/ folder next to {videos} — unpack the Train/Test splits zip "
                         f"from {UCF101_URL} into {videos.parent}")


def load_ucf101(root: str | Path, split: int = 1, domain: str = "ucf101") -> pd.DataFrame:
    """UCF101 with its official train/test split: label = class folder, group = ``<Class>_g<GG>``.

    ``root`` holds ``UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` and ``ucfTrainTestlist/`` (or is
    the ``UCF-101`` folder itself, with the lists beside or inside it). The 25 groups of a
    class are clips cut from one long video (same actor and background); the official
    splits keep groups apart. List entries are matched to files case-insensitively, so
    spellings such as ``HandstandPushups`` / ``HandStandPushups`` do not matter.
    """
    split = _check_split_number(split, (1, 2, 3))
    videos_dir, lists_dir = _ucf101_dirs(Path(root))
    wanted = {"train": lists_dir / f"trainlist0{split}.txt", "test": lists_dir / f"testlist0{split}.txt",
              "classInd": lists_dir / "classInd.txt"}
    absent = [str(p) for p in wanted.values() if not p.is_file()]
    if absent:
        raise ParameterError(f"UCF101 split files missing: {absent} — get the Train/Test splits zip from {UCF101_URL}")
    class_names = set(read_ucf101_class_index(wanted["classInd"]).values())
    split_of: dict[str, str] = {}
    for split_name in ("train", "test"):
        for relative in _read_ucf101_list(wanted[split_name]):
            split_of[relative.lower()] = split_name
    rows, unlisted = [], []
    for path in sorted(p for p in videos_dir.glob("*/*") if _is_video(p)):
        label = path.parent.name
        relative = f"{label}/{path.name}".lower()
        match = UCF101_NAME.match(path.stem)
        group = f"{label}_g{match['group']}" if match else path.stem
        if relative not in split_of:
            unlisted.append(relative)
        rows.append({"path": str(path), "label": label, "domain": domain, "group": group,
                     "split": split_of.get(relative, "")})
    if not rows:
        raise ParameterError(f"no videos under {videos_dir}/<Class>/ — is UCF101.rar fully unpacked?")
    known = {name.lower() for name in class_names}
    unknown = sorted({row["label"] for row in rows if row["label"].lower() not in known})
    if unknown:
        warnings.warn(f"{wanted['classInd']}: class folder(s) {unknown[:5]} are not in classInd.txt", stacklevel=2)
    on_disk = {f"{Path(r['path']).parent.name}/{Path(r['path']).name}".lower() for r in rows}
    missing = sorted(rel for rel in split_of if rel not in on_disk)
    return _warn_listing(_frame(rows), missing, unlisted, f"UCF101 split {split}")


# ----------------------------------------------------------------------------- HMDB51
def hmdb51_group(stem: str, label: str) -> str:
    """The source movie of an HMDB51 clip, used as its group.

    HMDB51 has no group ids, but its names encode the source:
    ``April_09_brush_hair_u_nm_np1_ba_goo_0`` is source ``April_09``, action ``brush_hair``,
    then meta tags (visible body part, camera motion, number of people, viewpoint, quality)
    and the clip number. We strip the meta suffix and then the trailing action name; clips
    of one movie or YouTube video share a group. Names that do not follow the pattern fall
    back to the stem without a trailing ``_<number>``.
    """
    base = HMDB51_META.sub("", stem)
    if base == stem:
        return re.sub(r"_\d+$", "", stem)
    suffix = f"_{label}"
    if base.lower().endswith(suffix.lower()) and len(base) > len(suffix):
        base = base[: -len(suffix)]
    return base


def load_hmdb51(root: str | Path, split: int = 1, domain: str = "hmdb51") -> pd.DataFrame:
    """HMDB51 with one of its three 70/30 splits: label = class folder, group = source movie.

    ``root/<class>/<video>.avi`` and ``root/testTrainMulti_7030_splits/<class>_test_split<N>.txt``
    whose lines are ``<video>.avi <id>`` with id 1 = train, 2 = test, 0 = not used in this
    split (split ``"unused"``). See :func:`hmdb51_group` for the group heuristic.
    """
    split = _check_split_number(split, (1, 2, 3))
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"HMDB51 root {root} is not a folder — unpack the class archives from {HMDB51_URL} there")
    splits_dir = root / "testTrainMulti_7030_splits"
    if not splits_dir.is_dir():
        raise ParameterError(f"no {splits_dir} — unpack the three-splits archive from {HMDB51_URL} into {root}")
    split_of: dict[tuple[str, str], str] = {}
    for split_file in sorted(splits_dir.glob(f"*_test_split{split}.txt")):
        label = split_file.name[: -len(f"_test_split{split}.txt")]
        for number, line in enumerate(split_file.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in HMDB51_SPLIT_IDS:
                raise ParameterError(f"{split_file}:{number}: expected '<video>.avi <0|1|2>', got {line!r}")
            split_of[(label, parts[0])] = HMDB51_SPLIT_IDS[parts[1]]
    if not split_of:
        raise ParameterError(f"{splits_dir} has no *_test_split{split}.txt files — is the splits archive complete?")
    rows, unlisted = [], []
    for path in sorted(p for p in root.glob("*/*") if _is_video(p)):
        label = path.parent.name
        key = (label, path.name)
        if key not in split_of:
            unlisted.append(f"{label}/{path.name}")
        rows.append({"path": str(path), "label": label, "domain": domain, "group": hmdb51_group(path.stem, label),
                     "split": split_of.get(key, "")})
    if not rows:
        raise ParameterError(f"no videos under {root}/<class>/ — unpack each class .rar from {HMDB51_URL}")
    on_disk = {(Path(r["path"]).parent.name, Path(r["path"]).name) for r in rows}
    missing = sorted(f"{label}/{name}" for label, name in split_of if (label, name) not in on_disk)
    return _warn_listing(_frame(rows), missing, unlisted, f"HMDB51 split {split}")


# ----------------------------------------------------------------------------- Kinetics
def kinetics_filename(youtube_id: str, time_start: float, time_end: float, extension: str = ".mp4") -> str:
    """The kinetics-dataset downloader's name: ``<youtube_id>_<start:06d>_<end:06d>.mp4``."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}{extension}"


def load_kinetics_csv(csv_path: str | Path, videos_root: str | Path | None = None, split: str | None = None,
                      domain: str = "kinetics") -> pd.DataFrame:
    """A Kinetics annotation CSV (youtube_id, time_start, time_end, label[, split]) -> manifest.

    Videos are looked up by name anywhere under ``videos_root`` (default: the CSV's folder),
    so ``<label>/`` folders, split folders and flat layouts all work. group = youtube_id
    (clips of one YouTube video share it). ``split`` overrides the CSV's split column.
    Rows whose file is absent are skipped, warned about and listed in ``attrs["missing"]``.
    """
    if split is not None and not isinstance(split, str):
        raise ParameterError(f"Kinetics split must be a name such as 'train' or 'val', got {split!r}")
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ParameterError(f"Kinetics CSV {csv_path} does not exist — get the annotations from {KINETICS_URL}")
    videos_root = Path(videos_root) if videos_root is not None else csv_path.parent
    if not videos_root.is_dir():
        raise ParameterError(f"videos_root {videos_root} is not a folder — point it at the downloaded videos")
    annotations = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    absent = [c for c in ("youtube_id", "time_start", "time_end", "label") if c not in annotations.columns]
    if absent:
        raise ParameterError(f"{csv_path} lacks column(s) {absent}; it has {list(annotations.columns)}")
    on_disk: dict[str, Path] = {}
    for path in sorted(videos_root.rglob("*")):
        if _is_video(path):
            on_disk.setdefault(path.stem, path)
    rows, missing = [], []
    for record in annotations.itertuples(index=False):
        try:
            stem = Path(kinetics_filename(record.youtube_id, record.time_start, record.time_end)).stem
        except ValueError:
            raise ParameterError(f"{csv_path}: time_start/time_end of {record.youtube_id!r} are not numbers") from None
        path = on_disk.get(stem)
        if path is None:
            missing.append(stem + ".mp4")
            continue
        row_split = split if split is not None else getattr(record, "split", "")
        rows.append({"path": str(path), "label": record.label, "domain": domain, "group": record.youtube_id,
                     "split": row_split})
    if not rows:
        raise ParameterError(f"none of the {len(annotations)} videos in {csv_path} was found under {videos_root} "
                             f"(expected names like {missing[0] if missing else '<id>_000000_000010.mp4'})")
    return _warn_listing(_frame(rows), missing, [], f"Kinetics {csv_path.name}")


# ----------------------------------------------------------------------------- folder and manifest
def _folder_group(stem: str, label: str) -> str:
    match = FOLDER_GROUP.match(stem)
    return match["prefix"] if match else stem


def folder_label_and_group(root: Path, path: Path) -> tuple[str, str]:
    """Label and group of a video found under ``root`` by :func:`load_folder`'s rules."""
    parts = path.relative_to(root).parts
    label = parts[0] if len(parts) > 1 else "unlabelled"
    return label, _folder_group(path.stem, label)


def load_folder(root: str | Path, domain: str | None = None) -> pd.DataFrame:
    """``root/<label>/*.<video>`` -> manifest. domain defaults to the root folder's name.

    Each video is its own group, unless its name carries a UCF-style ``_gNN_`` group tag
    (``v_Walk_g03_c02.mp4`` -> group ``Walk_g03``). Videos directly in ``root`` are labelled
    ``unlabelled``; deeper folders take the label of their first-level folder. The walk is
    :func:`discover_videos`, which survives symlink loops and unreadable
    entries; those are warned about and listed in ``manifest.attrs["skipped"]``.
    """
    manifest, failures = discover_videos(root, domain)
    if len(manifest) == 0:
        raise ParameterError(f"no videos found in {root} (looked for {', '.join(VIDEO_EXTENSIONS)})")
    manifest.attrs["skipped"] = [(f.path, f.reason) for f in failures]
    if failures:
        warnings.warn(f"{root}: {len(failures)} entries skipped, e.g. {failures[0].path}: {failures[0].reason}",
                      stacklevel=2)
    return manifest


def load_manifest(csv_path: str | Path) -> pd.DataFrame:
    """A manifest CSV (path, label, domain, group[, split]); relative paths resolve against its folder."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ParameterError(f"manifest {csv_path} does not exist — check the path")
    manifest = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    absent = [c for c in REQUIRED_MANIFEST_COLUMNS if c not in manifest.columns]
    if absent:
        raise ParameterError(f"manifest {csv_path} lacks column(s) {absent}; a manifest needs "
                             f"{list(REQUIRED_MANIFEST_COLUMNS)} and optionally 'split'")
    if len(manifest) == 0:
        raise ParameterError(f"manifest {csv_path} has no rows")
    if "split" not in manifest.columns:
        manifest["split"] = ""
    base = csv_path.resolve().parent
    manifest["path"] = [str(p if Path(p).is_absolute() else (base / p).resolve()) for p in manifest["path"]]
    manifest = manifest[list(MANIFEST_COLUMNS)].astype(str)
    missing = [p for p in manifest["path"] if not Path(p).exists()]
    return _warn_listing(manifest, missing, [], f"manifest {csv_path}")


LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "ucf101": load_ucf101, "hmdb51": load_hmdb51, "kinetics": load_kinetics_csv,
    "folder": load_folder, "manifest": load_manifest,
}


def load_dataset(name: str, root: str | Path, **kw: Any) -> pd.DataFrame:
    """Dispatch by name: "ucf101", "hmdb51", "kinetics" (root = the CSV), "folder", "manifest"."""
    if name not in LOADERS:
        raise ParameterError(f"unknown dataset {name!r}; choose one of {sorted(LOADERS)}")
    loader = LOADERS[name]
    accepted = list(inspect.signature(loader).parameters)[1:]
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise ParameterError(f"dataset {name!r} takes no option(s) {unknown}; it accepts {accepted}")
    return loader(root, **kw)


# ----------------------------------------------------------------------------- sources: discovery
@dataclass
class Failure:
    """One input that was skipped, and why."""

    path: str
    stage: str  # discover | decode | encode | index
    reason: str
    hint: str = ""


def discover_videos(root: str | Path, domain: str | None = None) -> tuple[pd.DataFrame, list[Failure]]:
    """Find video files under ``root``; label and group follow :func:`datasets.load_folder`'s rules.

    Never raises on odd entries: a directory named like a video, a symlink loop, an
    unreadable folder or file each become a :class:`Failure` and the walk continues.
    """
    root = Path(root)
    if not root.exists():
        raise ParameterError(f"video folder {root} does not exist — pass an existing folder or a manifest CSV")
    if not root.is_dir():
        raise ParameterError(f"{root} is not a folder — pass a folder of videos or a manifest CSV (*.csv)")
    rows: list[dict] = []
    failures: list[Failure] = []
    domain = domain or root.resolve().name

    def on_error(err: OSError) -> None:
        failures.append(Failure(str(err.filename), "discover", f"cannot list folder: {err.strerror}",
                                "check its permissions"))

    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError as err:
            on_error(err)
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop: do not walk it twice
            failures.append(Failure(dirpath, "discover", "symlink loop (folder already visited)",
                                    "remove the link or point it elsewhere"))
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        for name in sorted(dirnames):
            if name.lower().endswith(VIDEO_EXTENSIONS):
                failures.append(Failure(str(Path(dirpath) / name), "discover",
                                        "a directory named like a video", "rename it or move it out of the folder"))
        dirnames[:] = sorted(d for d in dirnames if not d.lower().endswith(VIDEO_EXTENSIONS))
        for name in sorted(filenames):
            if not name.lower().endswith(VIDEO_EXTENSIONS):
                continue
            path = Path(dirpath) / name
            try:
                path.stat()
            except OSError as err:
                reason = "symlink loop" if err.errno == 40 else f"cannot stat file: {err.strerror}"
                failures.append(Failure(str(path), "discover", reason, "fix or remove the link"))
                continue
            label, group = folder_label_and_group(root, path)
            rows.append({"path": str(path), "label": label, "domain": domain, "group": group, "split": ""})
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)), failures


def load_source(source: str | Path, dataset: str | None = None, **dataset_kwargs) -> tuple[pd.DataFrame, list[Failure]]:
    """Turn what the user pointed at into a manifest: a folder, a manifest CSV, or a named dataset."""
    source = Path(source)
    if dataset and dataset not in ("folder", "manifest"):
        manifest = load_dataset(dataset, source, **dataset_kwargs)
        return normalise_manifest(manifest), []
    if source.suffix.lower() == ".csv":
        if not source.is_file():
            raise ParameterError(f"manifest {source} does not exist — check the path")
        return normalise_manifest(load_manifest(source)), []
    return discover_videos(source, dataset_kwargs.get("domain"))


def normalise_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest with exactly :data:`MANIFEST_COLUMNS`, as text ("" where a column or value is missing)."""
    manifest = manifest.copy()
    for column in MANIFEST_COLUMNS:
        if column not in manifest.columns:
            manifest[column] = ""
    manifest = manifest[list(MANIFEST_COLUMNS)].fillna("")
    return manifest.astype({c: str for c in MANIFEST_COLUMNS})
