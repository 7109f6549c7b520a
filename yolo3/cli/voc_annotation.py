"""``voc_annotation.py`` / ``yolo3-voc-annotation`` / ``python -m yolo3.cli.voc_annotation``: Pascal VOC
XML annotations (a VOCdevkit, or a VoTT "Pascal VOC" export) to annotation files (:mod:`yolo3.datasets.voc`).

Writes one '<set>.txt' per image set (e.g. 2007_train.txt) into --out-dir, one image a line:
'path x_min,y_min,x_max,y_max,class_id ...'. Prints, per set, the boxes written per class and
everything left out (unknown class names, malformed XML files, missing images).
"""
from __future__ import annotations

import argparse
import os
import sys

from ..core.files import StagedFiles
from ..datasets.annotations import read_class_names
from ..datasets.voc import convert_image_set, find_image_sets
from ..resources import resolve_data_path
from .common import HelpFormatter, UsageError, check_output_dir, first_names, prog_name, refuse_overwriting, run_tool

SCRIPT, MODULE = "voc_annotation.py", "yolo3.cli.voc_annotation"
DEFAULT_CLASSES = os.path.join("model_data", "voc_classes.txt")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the VOC converter.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    p = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE),
        description="Convert Pascal VOC XML annotations to the yolo3 annotation format.",
        formatter_class=HelpFormatter)
    p.add_argument("--voc-root", "--voc_root", dest="voc_root", default="VOCdevkit",
                   help="a VOCdevkit (VOC2007/, VOC2012/...) or one VOC-layout folder (Annotations/, "
                        "ImageSets/Main/, JPEGImages/) such as a VoTT export")
    p.add_argument("--sets", nargs="+", default=None, metavar="SET",
                   help="image sets: 2007_train 2012_val ... in a VOCdevkit, or train val ...; default: every "
                        "train/val/test set found")
    p.add_argument("--classes", default=None, type=resolve_data_path,
                   help="class names file, one a line (class id = line index); default: "
                        "model_data/voc_classes.txt if it exists, else the 20 VOC classes (bundled)")
    p.add_argument("--out-dir", "--out_dir", dest="out_dir", default=".", help="folder for the <set>.txt files")
    p.add_argument("--skip-difficult", "--skip_difficult", dest="skip_difficult", action="store_true",
                   help="leave out objects marked <difficult>1</difficult> (counted in the report)")
    p.add_argument("--relative", action="store_true",
                   help="write image paths relative to --out-dir (where the annotation files are; the "
                        "project's reader resolves relative paths from there); default: absolute paths")
    p.add_argument("--strict", action="store_true",
                   help="exit with code 2 if anything was left out (unknown classes, malformed XML, missing images)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return p


def _class_names(path: str | None) -> tuple[list[str], str]:
    """The class names and where they came from; :class:`UsageError` for a missing file or a name twice."""
    source = path if path is not None else resolve_data_path(DEFAULT_CLASSES)
    try:
        names = read_class_names(source)
    except (FileNotFoundError, ValueError, UnicodeDecodeError) as e:
        raise UsageError(str(e)) from None
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise UsageError(f"class names file {source} lists a name twice: {', '.join(dup)}")
    return names, source


def _limit(items: list[str]) -> str:
    return first_names(items, 10, sep="; ")


def _print_report(out_path: str, report, class_names: list[str]) -> None:
    """One image set's summary: boxes per class, then every kind of object or file left out."""
    print(f"\n{out_path}: {report.images} images ({report.empty_images} without boxes), {report.boxes} boxes")
    width = max((len(n) for n in class_names), default=5)
    for cid, name in enumerate(class_names):
        print(f"  {cid:3d} {name:<{width}} {report.boxes_per_class.get(name, 0):7d}")
    if report.difficult_skipped:
        print(f"  left out {report.difficult_skipped} difficult object(s) (--skip-difficult)")
    elif report.difficult_kept:
        print(f"  kept {report.difficult_kept} difficult object(s) (--skip-difficult leaves them out)")
    if report.unknown_classes:
        counts = ", ".join(f"{n} ({c})" for n, c in report.unknown_classes.most_common())
        print(f"  WARNING: left out {sum(report.unknown_classes.values())} object(s) whose class is not in "
              f"the class list: {counts}")
    if report.bad_objects:
        print(f"  WARNING: left out {len(report.bad_objects)} malformed object(s): "
              + _limit([f"{p} object {i}: {r}" for p, i, r in report.bad_objects]))
    if report.malformed_files:
        print(f"  WARNING: left out {len(report.malformed_files)} image(s) with a missing or malformed XML "
              "file: " + _limit([f"{p}: {r}" for p, r in report.malformed_files]))
    if report.missing_images:
        print(f"  WARNING: left out {len(report.missing_images)} annotated image(s) not found: "
              + _limit(report.missing_images))


def _check_outputs(args: argparse.Namespace, image_sets, classes_from: str) -> list[str]:
    """The ``<set>.txt`` paths; :class:`UsageError` if one would replace an input (an ImageSets list,
    the class names) or --out-dir cannot be written. Nothing is touched."""
    check_output_dir(args.out_dir, "--out-dir")
    inputs = [classes_from] + [src for image_set in image_sets for src in image_set.source]
    out_paths = []
    for image_set in image_sets:
        out_path = os.path.join(args.out_dir, f"{image_set.label}.txt")
        refuse_overwriting(out_path, inputs, "--out-dir: output")
        out_paths.append(out_path)
    return out_paths


def _run(args: argparse.Namespace) -> int:
    class_names, classes_from = _class_names(args.classes)
    try:
        image_sets = find_image_sets(args.voc_root, args.sets)
    except OSError as e:
        raise UsageError(f"cannot read {args.voc_root}: {e}") from None
    out_paths = _check_outputs(args, image_sets, classes_from)
    print(f"classes: {len(class_names)} from {classes_from}")
    total_problems = 0
    os.makedirs(args.out_dir, exist_ok=True)
    with StagedFiles() as staged:  # every set is put in place together, only when the run succeeds
        for image_set, out_path in zip(image_sets, out_paths):
            try:
                report = convert_image_set(image_set, class_names, out_path, skip_difficult=args.skip_difficult,
                                           relative=args.relative, progress=args.progress,
                                           write_to=staged.path_for(out_path))
            except OSError as e:
                raise UsageError(f"{image_set.label}: {e}") from None
            total_problems += report.problems
            _print_report(out_path, report, class_names)
        if args.strict and total_problems:
            raise UsageError(f"{total_problems} object(s)/file(s) left out (see the warnings above) and --strict "
                             "was given; no file written")
        staged.commit()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the VOC converter; 0 on success, 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
