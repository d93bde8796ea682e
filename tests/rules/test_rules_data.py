"""Data: IDX round trips, MNIST folder handling and PCA, the digits fallback, the teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maml_rl.rules.config import TaskConfig
from maml_rl.rules.data import DataError, find_mnist_files, mnist, pca_project, read_idx, teacher_student, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    write_idx(tmp_path / name, arr)
    back = read_idx(tmp_path / name)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert ((tmp_path / name).read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_idx_header_is_the_mnist_layout(tmp_path):
    write_idx(tmp_path / "x", np.arange(6, dtype=np.uint8).reshape(2, 3))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 2]) and raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[12:] == bytes(range(6))


def test_idx_errors_are_clear(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x01\x02")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 4), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(DataError, match="holds 13 bytes"):
        read_idx(tmp_path / "short")


def write_tiny_mnist(folder, n_train=60, n_test=30, sep="-", gz=False, seed=0):
    """Synthetic 28x28 'digits': class c lights up a class-specific block of pixels, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def images(labels):
        x = rng.integers(0, 40, size=(len(labels), 28, 28))
        for i, c in enumerate(labels):
            x[i, 2 * c : 2 * c + 6, 4:20] += 200
        return np.clip(x, 0, 255).astype(np.uint8)

    suffix = ".gz" if gz else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        write_idx(folder / f"{stem}-images{sep}idx3-ubyte{suffix}", images(labels))
        write_idx(folder / f"{stem}-labels{sep}idx1-ubyte{suffix}", labels.astype(np.uint8))


@pytest.mark.parametrize("sep,gz", [("-", False), (".", True)])
def test_mnist_from_idx_folder(tmp_path, sep, gz, monkeypatch):
    write_tiny_mnist(tmp_path / "m", sep=sep, gz=gz)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    task = TaskConfig(
        name="mnist", n_train=40, n_test=20, input_dim=10, hidden_dim=8, output_dim=10, mnist_dir=str(tmp_path / "m")
    )
    d = mnist(task, seed=0)
    assert d.x_train.shape == (40, 10) and d.x_test.shape == (20, 10)
    assert d.y_train.dtype == torch.int64 and set(d.y_train.tolist()) <= set(range(10))
    assert "MNIST IDX files" in d.source and d.loss == "cross_entropy"
    # PCA fitted on the training subset: projected training data is centred and its components uncorrelated
    cov = np.cov(d.x_train.numpy().T)
    assert np.allclose(d.x_train.numpy().mean(0), 0, atol=1e-4)
    assert np.allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-3 * cov.max())
    assert np.all(np.diff(np.diag(cov)) <= 1e-6 * cov.max())  # variance decreasing along components


def test_mnist_dir_from_environment_and_bad_dir(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path / "m")
    task = TaskConfig(name="mnist", n_train=40, n_test=20, input_dim=5, hidden_dim=8, output_dim=10)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "m"))
    assert "MNIST IDX files" in mnist(task, 0).source
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="does not exist"):
        mnist(task, 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no train-images-idx3-ubyte"):
        find_mnist_files(tmp_path / "empty")


def test_digits_fallback_says_so(monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    task = TaskConfig(name="mnist", n_train=100, n_test=50, input_dim=10, hidden_dim=8, output_dim=10)
    d = mnist(task, seed=0)
    assert "8x8 digits" in d.source and "NOT MNIST" in d.source
    assert d.x_train.shape == (100, 10) and d.x_test.shape == (50, 10)
    big = mnist(TaskConfig(name="mnist", n_train=512, n_test=5000, input_dim=10, hidden_dim=8, output_dim=10), 0)
    assert big.x_test.shape == (1797 - 512, 10) and "1285 test samples" in big.source
    held = mnist(task, seed=0, label_permutation=True)
    assert "permuted" in held.source and not torch.equal(held.y_train, d.y_train)


def test_pca_whiten_gives_unit_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 30)) @ rng.normal(size=(30, 30))
    p, _ = pca_project(x, x[:5], 4, whiten=True)
    np.testing.assert_allclose(p.var(0), 1.0, rtol=1e-6)


def test_teacher_generates_its_labels():
    task = TaskConfig(
        name="teacher-student", n_train=32, n_test=16, input_dim=4, hidden_dim=6, output_dim=3, target_noise_std=0.0
    )
    d = teacher_student(task, seed=3)
    assert d.x_train.shape == (32, 4) and d.y_train.shape == (32, 3) and d.x_test.shape == (16, 4)
    assert (d.y_train >= 0).all()  # ReLU output layer, no noise
    other = teacher_student(task, seed=4)
    assert not torch.allclose(d.y_train, other.y_train)
    again = teacher_student(task, seed=3)
    torch.testing.assert_close(d.x_test, again.x_test)
    torch.testing.assert_close(d.y_test, again.y_test)
