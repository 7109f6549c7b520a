"""Convert Pascal VOC XML annotations (a VOCdevkit, or a VoTT "Pascal VOC" export) to annotation files.

    python voc_annotation.py --voc-root VOCdevkit --sets 2007_train 2007_val 2007_test
    python voc_annotation.py --voc-root my-vott-export --sets train val --classes my_classes.txt --relative

Writes one '<set>.txt' per image set (e.g. 2007_train.txt) into --out-dir, one image a line:
'path x_min,y_min,x_max,y_max,class_id ...'. Prints, per set, the boxes written per class and
everything left out (unknown class names, malformed XML files, missing images).
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CLASSES = os.path.join(HERE, "model_data", "voc_classes.txt")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None / True / False of optional values and switches."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Convert Pascal VOC XML annotations to the yolo3 annotation format.",
        formatter_class=_HelpFormatter)
    p.add_argument("--voc-root", "--voc_root", dest="voc_root", default="VOCdevkit",
                   help="a VOCdevkit (VOC2007/, VOC2012/...) or one VOC-layout folder (Annotations/, "
                        "ImageSets/Main/, JPEGImages/) such as a VoTT export")
    p.add_argument("--sets", nargs="+", default=None, metavar="SET",
                   help="image sets: 2007_train 2012_val ... in a VOCdevkit, or train val ...; default: every "
                        "train/val/test set found")
    p.add_argument("--classes", default=None,
                   help="class names file, one a line (class id = line index); default: "
                        "model_data/voc_classes.txt beside this script, else the 20 VOC classes")
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


def _limit(items: list[str], n: int = 10) -> str:
    text = "; ".join(items[:n])
    return text + (f"; ... and {len(items) - n} more" if len(items) > n else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from yolo3.datasets.annotations import read_class_names
    from yolo3.datasets.voc import VOC_CLASSES, VocError, convert_image_set, find_image_sets

    def fail(msg: str) -> int:
        print(f"voc_annotation.py: error: {msg}", file=sys.stderr)
        return 2

    if args.classes is not None:
        try:
            class_names = read_class_names(args.classes)
        except (FileNotFoundError, ValueError, UnicodeDecodeError) as e:
            return fail(str(e))
        classes_from = args.classes
    elif os.path.isfile(DEFAULT_CLASSES):
        class_names = read_class_names(DEFAULT_CLASSES)
        classes_from = DEFAULT_CLASSES
    else:
        class_names = list(VOC_CLASSES)
        classes_from = "the 20 built-in VOC classes"
    if len(set(class_names)) != len(class_names):
        dup = sorted({n for n in class_names if class_names.count(n) > 1})
        return fail(f"class names file {classes_from} lists a name twice: {', '.join(dup)}")

    try:
        image_sets = find_image_sets(args.voc_root, args.sets)
    except VocError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"cannot read {args.voc_root}: {e}")

    print(f"classes: {len(class_names)} from {classes_from}")
    total_problems = 0
    for image_set in image_sets:
        out_path = os.path.join(args.out_dir, f"{image_set.label}.txt")
        try:
            report = convert_image_set(image_set, class_names, out_path, skip_difficult=args.skip_difficult,
                                       relative=args.relative, progress=args.progress)
        except OSError as e:
            return fail(f"{image_set.label}: {e}")
        total_problems += report.problems
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
    if args.strict and total_problems:
        return fail(f"{total_problems} object(s)/file(s) left out (see the warnings above) and --strict was given")
    return 0


if __name__ == "__main__":
    sys.exit(main())
