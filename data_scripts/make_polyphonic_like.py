"""Make a polyphonic-music-shaped binary data set (a stand-in for JSB chorales).

The real JSB chorales cannot be downloaded here. This writes an ``.npz`` with the same
shapes as Pyro's ``examples/dmm.py`` training split: ``sequences (N, T_max, 88)`` float32 in
{0, 1} (piano keys) and ``lengths (N,)`` int64, with sparse chords (3-4 keys held) that persist
over several steps and move by small steps within a key, so the data have temporal structure
for a DMM to learn::

    python data_scripts/make_polyphonic_like.py -o polyphonic_like.npz   # 229 sequences
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
KEYS = 88


def make_sequences(n: int = 229, max_length: int = 160, min_length: int = 40,
                   seed: int = 0, hold: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """``(sequences (n, max_length, 88) float32, lengths (n,) int64)``.

    Each sequence picks a key; chords are stacked thirds on a scale degree (3 or 4 notes,
    around the middle of the keyboard, plus a bass note an octave below); at each step the
    chord is held with probability ``hold``, otherwise the degree moves by -2..+2.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, max_length + 1, size=n)
    out = np.zeros((n, max_length, KEYS), dtype=np.float32)
    for i, length in enumerate(lengths):
        tonic = 39 + int(rng.integers(0, 12))  # key index of the tonic (around middle C)
        scale = tonic + np.concatenate([MAJOR - 12, MAJOR, MAJOR + 12, MAJOR + 24])
        degree = 7  # the tonic in the middle octave of ``scale``
        size = 3
        for t in range(length):
            if t > 0 and rng.random() > hold:
                degree = int(np.clip(degree + rng.integers(-2, 3), 4, 13))
                size = 3 + int(rng.random() < 0.4)
            notes = scale[degree + 2 * np.arange(size)]
            bass = scale[degree] - 12
            out[i, t, np.clip(np.append(notes, bass), 0, KEYS - 1)] = 1.0
    return out, lengths.astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("polyphonic_like.npz"))
    parser.add_argument("--sequences", type=int, default=229)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seqs, lengths = make_sequences(args.sequences, args.max_length, seed=args.seed)
    tmp = args.output.with_name(f".{args.output.name}.tmp.npz")
    np.savez_compressed(tmp, sequences=seqs, lengths=lengths)
    tmp.replace(args.output)
    print(f"wrote {args.output}: {len(lengths)} sequences, lengths {lengths.min()}-"
          f"{lengths.max()}, {seqs.sum() / lengths.sum():.2f} keys down per step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
