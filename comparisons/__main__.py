"""``python -m comparisons``: Table 1, then the extras (``--threads``, ``--rounds``,
``--device``, ``--tolerance``, ``--out`` and ``--quick`` go to both; the rest to
Table 1)."""
import argparse
import sys

from . import extras, table1


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    table1.main(argv)
    shared = argparse.ArgumentParser(add_help=False)
    flags = ("--threads", "--rounds", "--device", "--tolerance", "--out")
    for flag in flags:
        shared.add_argument(flag)
    shared.add_argument("--quick", action="store_true")
    known, _ = shared.parse_known_args(argv)
    forwarded = [a for flag in flags
                 if getattr(known, flag[2:]) is not None
                 for a in (flag, getattr(known, flag[2:]))]
    extras.main(forwarded + (["--quick"] if known.quick else []))


if __name__ == "__main__":
    main()
