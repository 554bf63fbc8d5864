"""``videossm simulate sprites -o sprites.nc``: procedural sprite clips (characters × motions)."""

from __future__ import annotations

from pyro_videossm.cli.simulate import register_simulator
from pyro_videossm.data.sprites import N_CHARACTERS, N_TRAIN_CHARACTERS, SPLITS, make_sprites


def _arguments(parser) -> None:
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels (default 64)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--split", choices=SPLITS, default="all",
                        help=f"training characters ({N_TRAIN_CHARACTERS}), test characters "
                             f"({N_CHARACTERS - N_TRAIN_CHARACTERS}) or all, with a 'split' "
                             "variable (default all)")
    parser.add_argument("--characters", type=int,
                        help="keep only the first N characters of the shuffled split (each in "
                             "all 9 motions; with --split all, 1000:296 of them train:test)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the character shuffle that makes the split (default 0)")


def _build(args):
    return make_sprites(args.split, size=args.size, frames=args.frames,
                        characters=args.characters, seed=args.seed, lazy=True)


register_simulator(
    "sprites",
    "procedural sprites: 1296 characters (4 static factors x 6) x 9 motions, 8 RGB frames",
    _arguments,
    _build,
)
