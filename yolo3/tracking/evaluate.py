"""``python -m yolo3.tracking.evaluate --gt GT --tracks TRACKS``: HOTA (DetA, AssA), MOTA, IDF1, IDSW, MT/ML
per sequence and combined, for MOTChallenge files or folders (see :mod:`yolo3.tracking.metrics`).

GT is a ground-truth file, a folder of ``<seq>.txt`` files or a MOTChallenge folder (``<seq>/gt/gt.txt``);
TRACKS a tracks file or a folder of ``<seq>.txt``. Exit codes: 0 done, 2 a user error (missing or
malformed file, a sequence without tracks), printed as one ``prog: error:`` line. Imports no TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import Yolo3Error
from .metrics import combine, evaluate_sequence, summary
from .mot import MotFormatError, read_mot, read_seqinfo, sequence_files, write_mot

__all__ = ["evaluate_paths", "format_table", "main"]

COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "MT", "ML", "FP", "FN")


def _seq_length(gt_file: str) -> int | None:
    value = read_seqinfo(gt_file).get("seqlength", "")
    return int(value) if value.isdigit() else None


def evaluate_paths(gt: str, tracks: str) -> dict[str, dict]:
    """Sequence name -> :func:`~yolo3.tracking.metrics.summary`, plus ``"COMBINED"`` over all sequences.

    Raises:
        MotFormatError: a missing or malformed file, or a ground-truth sequence without a tracks file.
    """
    gt_files, track_files = sequence_files(gt, "gt"), sequence_files(tracks, "tracks")
    if len(gt_files) == 1 and os.path.isfile(gt) and os.path.isfile(tracks):
        track_files = {next(iter(gt_files)): tracks}
    missing = sorted(set(gt_files) - set(track_files))
    if missing:
        raise MotFormatError(f"no tracks for sequence(s) {', '.join(missing[:5])} in {tracks}")
    raw = {}
    for name, path in gt_files.items():
        raw[name] = evaluate_sequence(read_mot(path, "gt"), read_mot(track_files[name], "tracks"),
                                      _seq_length(path), name)
    out = {name: summary(r) for name, r in raw.items()}
    out["COMBINED"] = summary(combine(list(raw.values())))
    return out


def format_table(results: dict[str, dict]) -> str:
    """The results as a text table: one row a sequence, percentages for the 0..1 metrics."""
    width = max(len(n) for n in results) + 2
    lines = ["sequence".ljust(width) + "".join(f"{c:>8}" for c in COLUMNS)]
    for name, r in results.items():
        cells = [f"{100 * r[c]:8.2f}" if isinstance(r[c], float) else f"{r[c]:8d}" for c in COLUMNS]
        lines.append(name.ljust(width) + "".join(cells))
    return "\n".join(lines)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The evaluator's command line."""
    ap = argparse.ArgumentParser(prog=prog or "python -m yolo3.tracking.evaluate",
                                 description="Score MOTChallenge tracks against ground truth: HOTA, DetA, AssA, "
                                             "MOTA, IDF1, IDSW, MT/ML (TrackEval's definitions).")
    ap.add_argument("--gt", required=True, help="ground-truth file, folder of <seq>.txt, or MOTChallenge folder")
    ap.add_argument("--tracks", required=True, help="tracks file or folder of <seq>.txt")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write every metric to this JSON file")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Print the metrics table; 0 done, 2 with ``prog: error: message`` on a user error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        results = evaluate_paths(args.gt, args.tracks)
        if args.json:
            inputs = [*sequence_files(args.gt, "gt").values(), *sequence_files(args.tracks, "tracks").values()]
            if any(os.path.realpath(p) == os.path.realpath(args.json) for p in inputs):
                raise MotFormatError(f"--json would overwrite an input: {args.json}")
            write_mot(args.json, [json.dumps(results, indent=1) + "\n"])  # atomic, like the track files
    except (Yolo3Error, OSError) as exc:
        print(f"{parser.prog}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
