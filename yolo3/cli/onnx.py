"""``python -m yolo3.cli.onnx MODEL OUTPUT``: write a model's bare network as ONNX (raw heads, the
head metadata in the file), for ``--backend onnxruntime``. ``export.py --format onnx`` does the same
with the export tool's conventions."""
from __future__ import annotations

import argparse
import os
import sys

from ..backends.onnx_export import DEFAULT_OPSET, OnnxUnavailableError, export_onnx, save_onnx
from ..modeling.saving import load_model
from .common import HelpFormatter

PROG = "python -m yolo3.cli.onnx"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The parser of the ONNX network writer.

    Args:
        prog: program name shown in usage and messages.
    """
    ap = argparse.ArgumentParser(
        prog=prog, formatter_class=HelpFormatter,
        description="Export a converted/trained YOLO model's network to ONNX (for --backend onnxruntime).")
    ap.add_argument("model", help="Keras model (.keras/.h5) or convert.py -w weights file")
    ap.add_argument("output", help="output .onnx file")
    ap.add_argument("--size", type=int, default=None,
                    help="fix the input to SIZE x SIZE (multiple of 32); default: any size")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    ap.add_argument("--method", choices=("auto", "native", "tf2onnx"), default="auto",
                    help="native: written from the Keras layers (default via auto); tf2onnx: any TF graph, "
                         "needs ~60x the weights' size in memory")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Export the model named on the command line; exit 2 with ``error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    if not os.path.isfile(args.model):
        print(f"error: model file not found: {args.model}", file=sys.stderr)
        return 2
    if args.size is not None and (args.size <= 0 or args.size % 32):
        print(f"error: --size must be a positive multiple of 32, got {args.size}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model)
        proto = export_onnx(model, None if args.size is None else (args.size, args.size), args.opset,
                            method=args.method)
    except (OnnxUnavailableError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_onnx(proto, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
