"""Train from a megadocs dataset through a pipe: `megadocs feed` writes raw tokens, this reads them back.

`sequences()` spawns `megadocs feed DIR ...` and yields one numpy array of `seq_len` tokens per sample
(numpy only). `MegadocsFeed` wraps it as a PyTorch IterableDataset. Run as a script to print a summary:

    python examples/pytorch_feed.py OUT --shuffle --seed 1 --epochs 2
"""

import argparse
import hashlib
import json
import os
import shlex
import subprocess

import numpy as np

try:
    import torch
    from torch.utils.data import IterableDataset, get_worker_info
except ImportError:  # sequences() and the script work with numpy alone
    torch = None
    IterableDataset = object

    def get_worker_info():
        return None


def seq_len_of(dataset_dir):
    """The sequence length `megadocs pack`/`run` recorded in DIR/megadocs.json (options.seqLen)."""
    with open(os.path.join(dataset_dir, "megadocs.json"), encoding="utf-8") as manifest:
        return int(json.load(manifest)["options"]["seqLen"])


def _read_exactly(stream, size):
    parts, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            break
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


def sequences(dataset_dir, seq_len=None, dtype="uint32", shuffle=False, seed=0, epochs=1, command=("megadocs",)):
    """Yields each sample's tokens as a numpy array of exactly `seq_len` values.

    Every sample must hold seq_len tokens (pack with `--tail drop` or `--tail pad`): the stream has no
    separators, so a shorter sample would shift everything after it.
    """
    seq_len = seq_len or seq_len_of(dataset_dir)
    args = [*command, "feed", dataset_dir, "--dtype", dtype, "--epochs", str(epochs)]
    if shuffle:
        args += ["--shuffle", "--seed", str(seed)]
    item = np.dtype(dtype).newbyteorder("<")
    size = seq_len * item.itemsize
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1 << 20)
    finished = False
    try:
        while True:
            data = _read_exactly(process.stdout, size)
            if not data:
                finished = True
                break
            if len(data) < size:
                raise ValueError(
                    f"the token stream ended {len(data)} bytes into a sample of {size} bytes: "
                    f"is seq_len {seq_len} right, and was the dataset packed with --tail drop or pad?"
                )
            yield np.frombuffer(data, dtype=item)
    finally:
        process.stdout.close()  # an early stop closes the pipe: megadocs feed exits quietly
        errors = process.stderr.read().decode("utf-8", "replace")
        process.stderr.close()
        code = process.wait()
        if finished and code != 0:
            raise RuntimeError(f"megadocs feed failed ({code}): {errors.strip()}")


class MegadocsFeed(IterableDataset):
    """A PyTorch IterableDataset over `megadocs feed`; yields int64 tensors of seq_len tokens.

    Use it with DataLoader(num_workers=0): the feed process already runs beside the trainer. With
    several workers, each one reads the whole stream and keeps every num_workers-th sequence.
    """

    def __init__(self, dataset_dir, seq_len=None, dtype="uint32", shuffle=False, seed=0, epochs=1, command=("megadocs",)):
        if torch is None:
            raise ImportError("MegadocsFeed needs PyTorch; sequences() works with numpy alone")
        self.options = dict(
            dataset_dir=dataset_dir, seq_len=seq_len, dtype=dtype, shuffle=shuffle, seed=seed, epochs=epochs, command=command
        )

    def __iter__(self):
        worker = get_worker_info()
        for index, tokens in enumerate(sequences(**self.options)):
            if worker is None or index % worker.num_workers == worker.id:
                yield torch.from_numpy(tokens.astype(np.int64))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir")
    parser.add_argument("--seq-len", type=int, help="default: options.seqLen of DIR/megadocs.json")
    parser.add_argument("--dtype", default="uint32", choices=["uint32", "uint16"])
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--command", default="megadocs", help="how to run megadocs, e.g. 'npx megadocs'")
    args = parser.parse_args()
    digest, count = hashlib.sha1(), 0
    for tokens in sequences(
        args.dataset_dir, args.seq_len, args.dtype, args.shuffle, args.seed, args.epochs, shlex.split(args.command)
    ):
        digest.update(tokens.astype("<u4").tobytes())
        count += 1
    print(json.dumps({"sequences": count, "sha1": digest.hexdigest()}))


if __name__ == "__main__":
    main()
