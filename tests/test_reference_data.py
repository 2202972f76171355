"""reference.mnist: the shipped, checksummed MNIST files (docs/course.md, "Data")."""

from __future__ import annotations

import hashlib
import shutil
import socket

import numpy as np
import pytest
import torch
import torchvision

from reference import mnist
from reference.mnist import MnistDataError

pytestmark = pytest.mark.usefixtures("single_thread")

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# Class counts of the standard MNIST splits.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def fresh_cache():
    """`_verified_bytes` is lru_cached: start and end each test with an empty cache."""
    mnist._verified_bytes.cache_clear()
    yield
    mnist._verified_bytes.cache_clear()


@pytest.fixture(scope="module")
def train_split():
    return mnist.load("train")


@pytest.fixture(scope="module")
def test_split():
    return mnist.load("test")


@pytest.fixture
def data_copy(tmp_path, fresh_cache):
    for name in FILES:
        shutil.copy(mnist.data_dir() / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    class NetworkDisabled(OSError):
        pass

    def refuse(*args, **kwargs):
        raise NetworkDisabled("network access is disabled in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return NetworkDisabled


def test_shipped_files_verify():
    result = mnist.verify()
    assert result == dict.fromkeys(FILES, True)


def test_sha256sums_file_agrees_with_module():
    lines = (mnist.data_dir() / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in lines if line.strip())
    assert listed == mnist.SHA256
    for name, digest in listed.items():
        assert hashlib.sha256((mnist.data_dir() / name).read_bytes()).hexdigest() == digest


def test_train_split(train_split):
    images, labels = train_split
    assert images.shape == (60_000, 1, 28, 28)
    assert images.dtype == torch.float32
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    assert images.min().item() == 0.0 and images.max().item() == 1.0
    assert labels[0].item() == 5
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert images.mean().item() == pytest.approx(0.1307, abs=5e-4)
    assert images.std().item() == pytest.approx(0.3081, abs=5e-4)
    assert torch.bincount(labels, minlength=10).tolist() == TRAIN_COUNTS


def test_test_split(test_split):
    images, labels = test_split
    assert images.shape == (10_000, 1, 28, 28)
    assert labels.shape == (10_000,)
    assert images.min().item() == 0.0 and images.max().item() == 1.0
    assert labels[0].item() == 7
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(labels, minlength=10).tolist() == TEST_COUNTS


def test_pixels_are_bytes_over_255(test_split):
    raw_images, raw_labels = mnist.load_raw("test")
    assert raw_images.dtype == torch.uint8 and raw_images.shape == (10_000, 28, 28)
    assert torch.equal(raw_labels, test_split[1])
    torch.testing.assert_close(test_split[0][:, 0], raw_images.float() / 255.0, rtol=0, atol=0)


def test_all_is_train_then_test(train_split, test_split):
    images, labels = mnist.load("all")
    assert images.shape == (70_000, 1, 28, 28)
    assert labels.shape == (70_000,)
    assert torch.equal(labels[:60_000], train_split[1]) and torch.equal(labels[60_000:], test_split[1])
    assert torch.equal(images[60_000], test_split[0][0])
    assert torch.equal(images[:5], train_split[0][:5])


@pytest.mark.parametrize("split", ["valid", "Train", "", None])
def test_bad_split_raises(split):
    with pytest.raises(ValueError, match="split must be"):
        mnist.load_raw(split)


def test_copy_loads_like_shipped(data_copy, test_split):
    assert all(mnist.verify(data_copy).values())
    images, labels = mnist.load("test", directory=data_copy)
    assert torch.equal(images, test_split[0]) and torch.equal(labels, test_split[1])


@pytest.mark.parametrize(
    "name, split",
    [
        ("t10k-labels-idx1-ubyte.gz", "test"),
        ("t10k-images-idx3-ubyte.gz", "test"),
        ("train-labels-idx1-ubyte.gz", "train"),
    ],
)
def test_corrupt_file_fails_verify_and_load(data_copy, name, split):
    path = data_copy / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    result = mnist.verify(data_copy)
    assert result[name] is False
    assert all(ok for other, ok in result.items() if other != name)
    with pytest.raises(MnistDataError, match="corrupt") as info:
        mnist.load_raw(split, directory=data_copy)
    assert name in str(info.value)
    with pytest.raises(MnistDataError, match="corrupt"):
        mnist.load(split, directory=data_copy)


def test_missing_file_fails_verify_and_load(data_copy):
    (data_copy / "t10k-images-idx3-ubyte.gz").unlink()
    result = mnist.verify(data_copy)
    assert result["t10k-images-idx3-ubyte.gz"] is False
    assert result["train-images-idx3-ubyte.gz"] is True
    with pytest.raises(MnistDataError, match="missing") as info:
        mnist.load_raw("test", directory=data_copy)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_empty_directory(tmp_path, fresh_cache):
    assert mnist.verify(tmp_path) == dict.fromkeys(FILES, False)
    with pytest.raises(MnistDataError, match="missing"):
        mnist.load("all", directory=tmp_path)


def test_torchvision_mnist_offline(tmp_path, no_network, test_split):
    root = mnist.torchvision_root(tmp_path)
    assert root == tmp_path
    for name in FILES:
        assert (tmp_path / "MNIST" / "raw" / name[: -len(".gz")]).is_file()
    dataset = torchvision.datasets.MNIST(tmp_path, train=False, download=True)
    assert len(dataset) == 10_000
    image, label = dataset[0]
    assert label == 7
    assert torch.equal(torch.from_numpy(np.array(image)), mnist.load_raw("test")[0][0])
    assert torch.equal(dataset.targets, test_split[1])
    # the course's transform gives the same tensors as mnist.load
    to_tensor = torchvision.transforms.ToTensor()
    assert torch.equal(to_tensor(dataset[1][0]), test_split[0][1])
    # calling it again (files already there) is harmless
    mnist.torchvision_root(tmp_path)
    assert len(torchvision.datasets.MNIST(tmp_path, train=False, download=True)) == 10_000


def test_torchvision_root_replaces_stale_files(tmp_path, no_network):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00")  # truncated header
    mnist.torchvision_root(tmp_path)
    assert len(torchvision.datasets.MNIST(tmp_path, train=False, download=True)) == 10_000
