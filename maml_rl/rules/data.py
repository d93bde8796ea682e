"""Data for the learning-rules lab: the teacher-student task and MNIST projected on principal components.

Shapes: inputs ``x`` are ``(N, input_dim)``; regression targets ``y`` are ``(N, output_dim)`` floats;
classification targets are ``(N,)`` int64 class indices.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import TaskConfig
from .network import forward, init_weights


class DataError(ValueError):
    """The data cannot be read or does not fit the configuration; the message says what and where."""


@dataclass(frozen=True)
class Dataset:
    """A training set and a held-out test set for one task."""

    x_train: torch.Tensor  # (N, input_dim)
    y_train: torch.Tensor  # (N, output_dim) float, or (N,) int64 class labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    loss: str  # 'mse' (teacher-student) or 'cross_entropy' (MNIST)
    output_activation: str  # 'relu' (teacher-student, as the teacher) or 'none' (logits for the softmax)
    source: str  # a human-readable description of where the data came from


# --------------------------------------------------------------------------------------------------- teacher-student


def teacher_student(task: TaskConfig, seed: int, dtype: torch.dtype = torch.float32) -> Dataset:
    """A teacher ``y = relu(relu(x W_h*^T) W_y*^T) + zeta`` with standard-normal weights (Cai & Cheng, sec. 3).

    ``x ~ N(0, I)``, ``zeta ~ N(0, target_noise_std^2)``; the test set is drawn fresh from the same teacher.
    """
    g = torch.Generator().manual_seed(seed)
    sizes = (task.input_dim, task.hidden_dim, task.output_dim)
    teacher = init_weights(sizes, g, std=1.0, dtype=dtype)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, task.input_dim, generator=g, dtype=dtype)
        y = forward(teacher, x, "relu")
        return x, y + task.target_noise_std * torch.randn(y.shape, generator=g, dtype=dtype)

    x_train, y_train = sample(task.n_train)
    x_test, y_test = sample(task.n_test)
    return Dataset(
        x_train,
        y_train,
        x_test,
        y_test,
        "mse",
        "relu",
        f"teacher-student {task.input_dim}-{task.hidden_dim}-{task.output_dim}, teacher seed {seed}",
    )


# --------------------------------------------------------------------------------------------------- IDX files

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzipped or not: magic ``0 0 type ndim``, big-endian dims, data."""
    path = Path(path)
    try:
        with _open(path) as f:
            header = f.read(4)
            if len(header) != 4 or header[:2] != b"\0\0" or header[2] not in _IDX_DTYPES:
                raise DataError(f"{path}: not an IDX file (bad magic number {header.hex() or 'empty'})")
            ndim = header[3]
            dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            dtype = np.dtype(_IDX_DTYPES[header[2]])
            payload = f.read()
    except (OSError, EOFError, struct.error) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(payload) != expected:
        raise DataError(f"{path}: IDX header says {dims} ({expected} bytes) but the file holds {len(payload)} bytes")
    return np.frombuffer(payload, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write an array as an IDX file; gzip it when ``compress`` (default: the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    data = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(data) if compress else data)


MNIST_FILES = {
    "train_images": ("train-images", 3),
    "train_labels": ("train-labels", 1),
    "test_images": ("t10k-images", 3),
    "test_labels": ("t10k-labels", 1),
}


def find_mnist_files(folder: str | Path) -> dict[str, Path]:
    """Locate the four MNIST IDX files; accepts ``train-images-idx3-ubyte``, ``train-images.idx3-ubyte``, ``.gz``."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"MNIST folder {str(folder)!r} does not exist or is not a folder")
    found = {}
    for key, (stem, nd) in MNIST_FILES.items():
        names = [f"{stem}{sep}idx{nd}-ubyte{gz}" for sep in ("-", ".") for gz in ("", ".gz")]
        hits = [folder / n for n in names if (folder / n).is_file()]
        if not hits:
            raise DataError(f"MNIST folder {str(folder)!r} has no {names[0]} (also tried {', '.join(names[1:])})")
        found[key] = hits[0]
    return found


def load_mnist_idx(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images flattened to ``(n, pixels)`` float64 and labels ``(n,)`` int64, for the train and test split."""
    files = find_mnist_files(folder)
    arrays = {k: read_idx(p) for k, p in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{files[f'{split}_images']}: images {images.shape} and labels {labels.shape} do not match")
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64)  # noqa: E731
    return (
        flat(arrays["train_images"]),
        arrays["train_labels"].astype(np.int64),
        flat(arrays["test_images"]),
        arrays["test_labels"].astype(np.int64),
    )


# --------------------------------------------------------------------------------------------------- MNIST-PCA


def pca_project(
    x_train: np.ndarray, x_test: np.ndarray, components: int, whiten: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise pixels and project onto the leading principal components, all fitted on the training subset.

    Pixels that are constant in the training subset are left at zero instead of divided by zero.
    """
    if components > min(x_train.shape):
        raise DataError(
            f"task.input_dim={components} principal components need at least that many training "
            f"samples and pixels; have {x_train.shape}"
        )
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0
    z_train, z_test = (x_train - mean) / std, (x_test - mean) / std
    _, s, vt = np.linalg.svd(z_train, full_matrices=False)  # z_train is already centred
    basis = vt[:components].T
    p_train, p_test = z_train @ basis, z_test @ basis
    if whiten:
        scale = s[:components] / np.sqrt(len(z_train))
        p_train, p_test = p_train / scale, p_test / scale
    return p_train, p_test


def mnist(task: TaskConfig, seed: int, dtype: torch.dtype = torch.float32, label_permutation: bool = False) -> Dataset:
    """MNIST (or sklearn's 8x8 digits when no folder is given) projected on ``task.input_dim`` PCs.

    The folder comes from ``task.mnist_dir``, else the ``MNIST_DIR`` environment variable. Without either, the
    digits bundled with scikit-learn are used (no download) and ``Dataset.source`` says so.
    ``label_permutation`` relabels the classes by a random permutation: a new task on the same images.
    """
    rng = np.random.default_rng(seed)
    folder = task.mnist_dir or os.environ.get("MNIST_DIR") or None
    if folder:
        x_tr_all, y_tr_all, x_te_all, y_te_all = load_mnist_idx(folder)
        if task.n_train > len(x_tr_all) or task.n_test > len(x_te_all):
            raise DataError(
                f"asked for {task.n_train} train / {task.n_test} test samples but {folder} has "
                f"{len(x_tr_all)} / {len(x_te_all)}"
            )
        tr = rng.choice(len(x_tr_all), task.n_train, replace=False)
        te = rng.choice(len(x_te_all), task.n_test, replace=False)
        x_tr, y_tr, x_te, y_te = x_tr_all[tr], y_tr_all[tr], x_te_all[te], y_te_all[te]
        source = f"MNIST IDX files from {folder} ({task.n_train} train / {task.n_test} test samples)"
    else:
        from sklearn.datasets import load_digits  # the rules extra, imported on use

        digits = load_digits()
        n_all = len(digits.target)
        if task.n_train >= n_all:
            raise DataError(
                f"sklearn's digits have {n_all} samples, task.n_train = {task.n_train} leaves none "
                f"for testing. Lower it or set task.mnist_dir / MNIST_DIR"
            )
        n_test = min(task.n_test, n_all - task.n_train)  # the 1797 digits cannot always fill the test set asked
        order = rng.permutation(n_all)
        tr, te = order[: task.n_train], order[task.n_train : task.n_train + n_test]
        x_all, y_all = digits.data.astype(np.float64), digits.target.astype(np.int64)
        x_tr, y_tr, x_te, y_te = x_all[tr], y_all[tr], x_all[te], y_all[te]
        source = (
            f"scikit-learn's bundled 8x8 digits, NOT MNIST (no MNIST folder given) "
            f"({task.n_train} train / {n_test} test samples)"
        )
    if label_permutation:
        perm = rng.permutation(10)
        y_tr, y_te = perm[y_tr], perm[y_te]
        source += ", labels permuted"
    p_tr, p_te = pca_project(x_tr, x_te, task.input_dim, task.whiten)
    as_t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return Dataset(
        as_t(p_tr), torch.as_tensor(y_tr), as_t(p_te), torch.as_tensor(y_te), "cross_entropy", "none", source
    )


def make_dataset(task: TaskConfig, seed: int, dtype: torch.dtype = torch.float32, heldout: bool = False) -> Dataset:
    """The configured task; ``heldout`` gives a new task of the same family (new teacher, or new MNIST subset
    with permuted labels) for testing whether a learned rule generalises."""
    if task.name == "teacher-student":
        return teacher_student(task, seed, dtype)
    return mnist(task, seed, dtype, label_permutation=heldout)
