#!/usr/bin/env python3
"""Train a small CNN on MNIST-format data with PyTorch, on one process or several, and log its accuracy per epoch.

The workload of Katib's PyTorch MNIST example, on the CPU: two convolutions (20 and 50 filters of 5×5,
each followed by ReLU and 2×2 max pooling), a hidden layer of 500 units and a 10-way log-softmax, with
the negative log-likelihood loss and SGD with momentum. Each epoch ends with a line such as

    2026-01-01T00:00:00Z INFO     Epoch 1. accuracy=0.8123 - loss=0.5321

which knob's default metrics collector reads (accuracy and loss on the test set).

Run as the replicas of a PyTorchJob, it trains with DistributedDataParallel: the training operator
sets WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT, the processes join a gloo process group (CPU),
each trains on its share of every epoch (a DistributedSampler) and evaluates its share of the test
set; only rank 0 logs. Without WORLD_SIZE, or with WORLD_SIZE=1, it is one ordinary process.

Data: as examples/mnist/train.py reads it (its loader is used), an mnist.npz or a folder of IDX files,
by default Fashion-MNIST from Debian's dataset-fashion-mnist package. PyTorch is Debian's python3-torch.
"""

import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as data  # noqa: E402  (examples/mnist/train.py: the loader and the log line)

try:
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler
except ImportError as error:
    sys.exit(f"error: cannot import PyTorch ({error}); install Debian's python3-torch (apt-get install python3-torch)")
try:
    torch.from_numpy(data.np.zeros(1))
except RuntimeError as error:
    # Debian's torch is built against Debian's NumPy 1.x; a virtual environment with NumPy 2 shadows it.
    sys.exit(f"error: this PyTorch ({torch.__version__}) cannot use this Python's NumPy ({data.np.__version__}): {error}; "
             f"run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy), not an environment with another NumPy")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 28×28 → 24×24 → 12×12
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 12×12 → 8×8 → 4×4
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


def environment():
    """(world size, rank) from the training operator's environment; exits with a message naming what is wrong."""
    def integer(name, default):
        value = os.environ.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            sys.exit(f"error: {name}={value!r} is not an integer")
    world_size, rank = integer("WORLD_SIZE", 1), integer("RANK", 0)
    if world_size < 1:
        sys.exit(f"error: WORLD_SIZE={world_size} must be at least 1")
    if not 0 <= rank < world_size:
        sys.exit(f"error: RANK={rank} is not between 0 and WORLD_SIZE-1 ({world_size - 1})")
    if world_size > 1:
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            sys.exit(f"error: WORLD_SIZE={world_size} but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: the ranks cannot find rank 0")
    return world_size, rank


def tensors(images, labels, limit, source, mean=None, std=None):
    if images.shape[1:] not in ((28, 28), (784,)):
        sys.exit(f"error: the images in {source} are {'×'.join(map(str, images.shape[1:]))}, not 28×28")
    x, y = data.prepare(images, labels, limit)
    x = torch.from_numpy(x).reshape(-1, 1, 28, 28)
    if mean is None:
        mean, std = x.mean().item(), x.std().item() or 1.0
    return (x - mean) / std, torch.from_numpy(y), mean, std


def evaluate(model, x, y, world_size, rank, batch=1000):
    """Accuracy and mean loss over the test set, each rank taking every world_size-th example."""
    x, y = x[rank::world_size], y[rank::world_size]
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)  # correct, summed loss, count
    with torch.no_grad():
        for start in range(0, len(x), batch):
            output = model(x[start:start + batch])
            target = y[start:start + batch]
            totals[0] += (output.argmax(dim=1) == target).sum().item()
            totals[1] += F.nll_loss(output, target, reduction="sum").item()
            totals[2] += len(target)
    if world_size > 1:
        dist.all_reduce(totals)
    model.train()
    return (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    parser.add_argument("--momentum", type=float, default=0.5, help="SGD momentum (default 0.5)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training set (default 1)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="examples per step on each process (default 64)")
    parser.add_argument("--train-limit", type=int, default=0, help="use only the first N training examples (0: all)")
    parser.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test examples (0: all)")
    parser.add_argument("--data", default=data.DEFAULT_DATA,
                        help=f"mnist.npz or a folder of IDX files (default {data.DEFAULT_DATA})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds to wait for the other processes at any step before failing (default 1800)")
    args = parser.parse_args()
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("train_limit", "test_limit"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 (all) or more")
    if not args.lr > 0:
        parser.error(f"--lr must be more than 0, not {args.lr}")
    if not 0 <= args.momentum < 1:
        parser.error(f"--momentum must be at least 0 and less than 1, not {args.momentum}")
    if not args.timeout > 0:
        parser.error(f"--timeout must be more than 0, not {args.timeout}")

    world_size, rank = environment()
    # One thread per process: several processes share a few cores.
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    images, labels, test_images, test_labels = data.load_data(args.data)
    x_train, y_train, mean, std = tensors(images, labels, args.train_limit, args.data)
    x_test, y_test, _, _ = tensors(test_images, test_labels, args.test_limit, args.data, mean, std)
    if len(x_train) < world_size or len(x_test) < world_size:
        sys.exit(f"error: {len(x_train)} training and {len(x_test)} test examples cannot be shared among {world_size} processes")

    if world_size > 1:
        address = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        try:
            dist.init_process_group("gloo", init_method="env://", world_size=world_size, rank=rank,
                                    timeout=datetime.timedelta(seconds=args.timeout))
        except (RuntimeError, ValueError) as error:
            sys.exit(f"error: rank {rank} of {world_size} could not join the process group at {address}: {error}")
    if rank == 0:
        data.log(f"Training on {len(x_train)} examples, testing on {len(x_test)}; lr {args.lr}, momentum {args.momentum}, "
                 f"{args.epochs} epochs, batch size {args.batch_size}"
                 + (f" on each of {world_size} processes (gloo)" if world_size > 1 else ""))

    net = Net()
    train_set = TensorDataset(x_train, y_train)
    if world_size > 1:
        sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
        loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    else:
        sampler = None
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(args.seed))

    try:
        # DDP starts by giving every rank rank 0's weights; it then averages the gradients of each step.
        model = DistributedDataParallel(net) if world_size > 1 else net
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
        for epoch in range(1, args.epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            for x, y in loader:
                optimizer.zero_grad()
                F.nll_loss(model(x), y).backward()
                optimizer.step()
            accuracy, loss = evaluate(net, x_test, y_test, world_size, rank)
            if rank == 0:
                data.log(f"Epoch {epoch}. accuracy={accuracy:.4f} - loss={loss:.4f}")

        # The trained weights, where knob keeps a trial's artifacts (`knob artifacts NAME --best`).
        artifacts = os.environ.get("KNOB_ARTIFACTS_DIR")
        if artifacts and rank == 0:
            path = os.path.join(artifacts, "model.pt")
            torch.save(net.state_dict(), path)
            data.log(f"Saved the model to {path}")
        if world_size > 1:
            dist.barrier()  # every rank has finished: none is left waiting on one that has gone
    except RuntimeError as error:
        if world_size == 1:
            raise
        leave(1, f"error: rank {rank} of {world_size} failed: {error}")
    if world_size > 1:
        leave(0)


def leave(code, message=None):
    """Ends a process of a group at once, without tearing the group down. PyTorch 1.13's gloo group can
    deadlock when it is destroyed: its worker thread, freeing the tensor of a finished collective, waits
    for the GIL, which the main thread holds while it waits for that thread to end."""
    if message:
        print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
