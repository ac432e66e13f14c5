#!/usr/bin/env python3
"""Train a small neural network on MNIST-format data and log its accuracy per epoch.

The workload of Katib's MNIST example, for a machine without internet or a GPU: NumPy only,
one hidden layer trained with SGD and momentum. Each epoch ends with a line such as

    2026-01-01T00:00:00Z INFO     Epoch 1. accuracy=0.8123 - loss=0.5321

which knob's default metrics collector reads (accuracy and loss on the test set).

Data: --data names a Keras-layout mnist.npz (x_train, y_train, x_test, y_test) or a folder of
MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-…; gzipped or not).
By default it is Fashion-MNIST from Debian's dataset-fashion-mnist package. A folder's files are
decompressed once into ~/.cache/knob-mnist (or $XDG_CACHE_HOME/knob-mnist), about 55 MB, and
memory-mapped by later trials, which then start in a fraction of a second.
"""

import argparse
import datetime
import gzip
import os
import struct
import sys

import numpy as np

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def log(message):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} INFO     {message}", flush=True)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find_idx(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{folder} has no {stem} (or {stem}.gz)")


def cached_data(source):
    """The four arrays of an IDX folder, decompressed once into the user's cache and memory-mapped
    after that (trials of an experiment all read the same files); None when there is no cache."""
    try:
        stamp = max((int(os.stat(os.path.join(source, name)).st_mtime) for name in os.listdir(source)), default=0)
        cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "knob-mnist",
                             f"{os.path.basename(os.path.normpath(source))}-{stamp}")
        names = ("x_train", "y_train", "x_test", "y_test")
        if not all(os.path.exists(os.path.join(cache, n + ".npy")) for n in names):
            arrays = load_idx_folder(source)
            os.makedirs(cache, exist_ok=True)
            for name, array in zip(names, arrays):
                # Written under a temporary name and renamed, so that a trial never reads half a file.
                temporary = os.path.join(cache, f".{name}.{os.getpid()}.npy")
                np.save(temporary, array)
                os.replace(temporary, os.path.join(cache, name + ".npy"))
            return arrays
        return tuple(np.load(os.path.join(cache, n + ".npy"), mmap_mode="r") for n in names)
    except OSError:
        return None


def load_idx_folder(source):
    return (
        read_idx(find_idx(source, "train-images-idx3-ubyte")),
        read_idx(find_idx(source, "train-labels-idx1-ubyte")),
        read_idx(find_idx(source, "t10k-images-idx3-ubyte")),
        read_idx(find_idx(source, "t10k-labels-idx1-ubyte")),
    )


def load_data(source):
    if not os.path.exists(source):
        hint = (
            "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
            if source == DEFAULT_DATA
            else "check the path"
        )
        sys.exit(f"error: no MNIST data at {source}: {hint}, or pass --data with an mnist.npz or a folder of IDX files")
    if os.path.isfile(source):
        with np.load(source) as npz:
            return npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"]
    try:
        return cached_data(source) or load_idx_folder(source)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")


def prepare(images, labels, limit):
    if limit:
        images, labels = images[:limit], labels[:limit]
    # One pass, straight into float32 (the same values as astype then divide, without the copy).
    x = np.divide(images.reshape(len(images), -1), np.float32(255), dtype=np.float32)
    return x, labels.astype(np.int64)


class Network:
    """784 → hidden (ReLU) → 10 (softmax), trained with SGD + momentum."""

    def __init__(self, inputs, hidden, classes, rng):
        self.params = [
            (rng.standard_normal((inputs, hidden)) * np.sqrt(2.0 / inputs)).astype(np.float32),
            np.zeros(hidden, np.float32),
            (rng.standard_normal((hidden, classes)) * np.sqrt(2.0 / hidden)).astype(np.float32),
            np.zeros(classes, np.float32),
        ]
        self.velocity = [np.zeros_like(p) for p in self.params]

    def forward(self, x):
        w1, b1, w2, b2 = self.params
        h = np.maximum(x @ w1 + b1, 0)
        logits = h @ w2 + b2
        return h, logits

    @staticmethod
    def loss_and_probs(logits, y):
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
        return loss, probs

    def step(self, x, y, lr, momentum):
        w1, b1, w2, b2 = self.params
        h, logits = self.forward(x)
        _, probs = self.loss_and_probs(logits, y)
        d_logits = probs
        d_logits[np.arange(len(y)), y] -= 1
        d_logits /= len(y)
        d_h = (d_logits @ w2.T) * (h > 0)
        grads = [x.T @ d_h, d_h.sum(axis=0), h.T @ d_logits, d_logits.sum(axis=0)]
        for p, v, g in zip(self.params, self.velocity, grads):
            v *= momentum
            v -= lr * g
            p += v

    def evaluate(self, x, y, batch=2000):
        correct, total_loss = 0, 0.0
        for start in range(0, len(x), batch):
            _, logits = self.forward(x[start : start + batch])
            loss, probs = self.loss_and_probs(logits, y[start : start + batch])
            total_loss += loss * len(probs)
            correct += int((probs.argmax(axis=1) == y[start : start + batch]).sum())
        return correct / len(x), total_loss / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    parser.add_argument("--momentum", type=float, default=0.5, help="SGD momentum (default 0.5)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training set (default 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per step (default 64)")
    parser.add_argument("--hidden", type=int, default=128, help="units in the hidden layer (default 128)")
    parser.add_argument("--train-limit", type=int, default=0, help="use only the first N training examples (0: all)")
    parser.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test examples (0: all)")
    parser.add_argument("--data", default=DEFAULT_DATA, help=f"mnist.npz or a folder of IDX files (default {DEFAULT_DATA})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args()
    for name in ("epochs", "batch_size", "hidden"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    x_train, y_train, x_test, y_test = load_data(args.data)
    x_train, y_train = prepare(x_train, y_train, args.train_limit)
    x_test, y_test = prepare(x_test, y_test, args.test_limit)
    log(f"Training on {len(x_train)} examples, testing on {len(x_test)}; lr {args.lr}, momentum {args.momentum}, "
        f"{args.epochs} epochs, batch size {args.batch_size}, {args.hidden} hidden units")

    rng = np.random.default_rng(args.seed)
    net = Network(x_train.shape[1], args.hidden, 10, rng)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, len(order), args.batch_size):
                batch = order[start : start + args.batch_size]
                net.step(x_train[batch], y_train[batch], args.lr, args.momentum)
            accuracy, loss = net.evaluate(x_test, y_test)
        log(f"Epoch {epoch}. accuracy={accuracy:.4f} - loss={loss:.4f}")

    # The trained weights, where knob keeps a trial's artifacts (`knob artifacts NAME --best`).
    artifacts = os.environ.get("KNOB_ARTIFACTS_DIR")
    if artifacts:
        path = os.path.join(artifacts, "model.npz")
        np.savez(path, **{name: p for name, p in zip(("w1", "b1", "w2", "b2"), net.params)})
        log(f"Saved the model to {path}")


if __name__ == "__main__":
    main()
