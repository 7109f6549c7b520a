"""``yolo3-coco`` / ``python -m yolo3.cli.coco``: COCO instances JSON <-> annotation text file + class
names file (:mod:`yolo3.datasets.coco`, where the category/image-id sidecar is described).

    python -m yolo3.cli.coco to-annotation instances_val2017.json --images-dir val2017 --out val.txt
    python -m yolo3.cli.coco from-annotation val.txt --classes val.names --out instances.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..core.files import atomic_open
from ..datasets.annotations import read_class_names
from ..datasets.coco import annotations_to_coco, coco_to_annotations, read_sidecar, sidecar_path
from ..resources import resolve_data_path
from .common import HelpFormatter, UsageError, check_output_file, first_names, prog_name, run_tool

SCRIPT, MODULE = "yolo3-coco", "yolo3.cli.coco"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the COCO converter: sub-commands ``to-annotation`` and ``from-annotation``.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    p = argparse.ArgumentParser(prog=prog or prog_name(SCRIPT, MODULE),
                                description="Convert between COCO instances JSON and yolo3 annotation files.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("to-annotation", help="COCO instances JSON -> annotation txt + names file + sidecar",
                       formatter_class=HelpFormatter)
    t.add_argument("instances", help="COCO instances JSON (e.g. annotations/instances_train2017.json)")
    t.add_argument("--images-dir", "--images_dir", dest="images_dir", required=True,
                   help="folder the JSON's file_name entries are relative to")
    t.add_argument("--out", required=True, help="annotation file to write")
    t.add_argument("--names", default=None, help="class names file to write (default: <out> with .names)")
    t.add_argument("--include-crowd", dest="include_crowd", action="store_true",
                   help="keep iscrowd=1 boxes as ordinary boxes (default: leave them out, counted)")
    t.add_argument("--skip-empty", dest="skip_empty", action="store_true",
                   help="leave out images without boxes (default: keep them as negatives)")
    t.add_argument("--relative", action="store_true",
                   help="image paths relative to the annotation file's folder (default: absolute)")
    f = sub.add_parser("from-annotation", help="annotation txt + names file -> COCO instances JSON",
                       formatter_class=HelpFormatter)
    f.add_argument("annotation", help="annotation file")
    f.add_argument("--classes", required=True, type=resolve_data_path, help="class names file, one a line")
    f.add_argument("--out", required=True, help="COCO instances JSON to write")
    f.add_argument("--categories", default=None,
                   help="category/image-id sidecar (default: <annotation>.categories.json if it exists; "
                        "else COCO's ids for the 80 COCO classes, class id + 1 for others)")
    f.add_argument("--images-dir", "--images_dir", dest="images_dir", default=None,
                   help="write file_name relative to this folder (default: the path as written)")
    return p


def _print_conversion(r) -> None:
    """The notes and warnings of a ``to-annotation`` conversion report."""
    for name, n in sorted(r.boxes_per_class.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<20} {n:8d}")
    if r.crowd_skipped:
        print(f"left out {r.crowd_skipped} crowd (iscrowd=1) box(es); --include-crowd keeps them")
    if r.crowd_kept:
        print(f"kept {r.crowd_kept} crowd (iscrowd=1) box(es) as ordinary boxes")
    if r.skipped_empty_images:
        print(f"left out {r.skipped_empty_images} image(s) without boxes (--skip-empty)")
    if r.zero_size_boxes:
        print(f"note: {r.zero_size_boxes} box(es) have zero width or height (kept; training skips them)")
    if r.bad_boxes:
        print(f"WARNING: left out {len(r.bad_boxes)} malformed box(es): {first_names(r.bad_boxes, 10, sep='; ')}")
    if r.unknown_image:
        print(f"WARNING: left out {r.unknown_image} annotation(s) whose image_id is not in 'images'")
    if r.unknown_category:
        print(f"WARNING: left out {sum(r.unknown_category.values())} annotation(s) with category ids not in "
              f"'categories': {dict(r.unknown_category)}")


def _to_annotation(args: argparse.Namespace) -> None:
    if not os.path.isdir(args.images_dir):
        raise UsageError(f"images folder not found: {args.images_dir}")
    names = args.names or os.path.splitext(args.out)[0] + ".names"
    outputs = {"--out": args.out, "--names": names, "category sidecar": sidecar_path(args.out)}
    for flag, path in outputs.items():
        others = [p for f, p in outputs.items() if f != flag]
        check_output_file(path, flag, [args.instances] + others, create_folder=True)
    r = coco_to_annotations(args.instances, args.images_dir, args.out, names, include_crowd=args.include_crowd,
                            skip_empty=args.skip_empty, relative=args.relative)
    print(f"wrote {args.out}: {r.images} images ({r.images_without_boxes} without boxes), {r.boxes} boxes")
    print(f"wrote {names}: {r.num_classes} classes; category mapping in {sidecar_path(args.out)}")
    _print_conversion(r)


def _from_annotation(args: argparse.Namespace) -> None:
    class_names = read_class_names(args.classes)
    side_path = args.categories or sidecar_path(args.annotation)
    check_output_file(args.out, "--out", [args.annotation, args.classes, side_path], create_folder=True)
    sidecar = None
    if args.categories or os.path.isfile(side_path):
        if not os.path.isfile(side_path):
            raise UsageError(f"categories sidecar not found: {side_path}")
        sidecar = read_sidecar(side_path)
    coco = annotations_to_coco(args.annotation, class_names, sidecar=sidecar, images_dir=args.images_dir)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with atomic_open(args.out) as fh:
        json.dump(coco, fh)
    ids = f"category and image ids from {side_path}" if sidecar else "category id = class id + 1"
    print(f"wrote {args.out}: {len(coco['images'])} images, {len(coco['annotations'])} boxes, "
          f"{len(coco['categories'])} categories ({ids})")


def _run(args: argparse.Namespace) -> int:
    try:
        (_to_annotation if args.command == "to-annotation" else _from_annotation)(args)
    except (FileNotFoundError, UnicodeDecodeError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{e.filename or ''}: {e.strerror or e}") from None
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the COCO converter; 0 on success, 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
