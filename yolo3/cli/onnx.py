"""``python -m yolo3.cli.onnx MODEL OUTPUT``: write a model's bare network as ONNX (raw heads, the
head metadata in the file), for ``--backend onnxruntime``. ``export.py --format onnx`` does the same
with the export tool's conventions."""
from __future__ import annotations

import argparse
import os
import sys

from ..backends.onnx_export import DEFAULT_OPSET, OnnxUnavailableError, export_onnx, save_onnx
from ..modeling.saving import load_model
from .common import (
    HelpFormatter,
    UsageError,
    check_output_file,
    number_type,
    parse_size,
    positive_int,
    prog_name,
    run_tool,
)

SCRIPT, MODULE = "yolo3-onnx", "yolo3.cli.onnx"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the ONNX network writer.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    ap = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE), formatter_class=HelpFormatter,
        description="Export a converted/trained YOLO model's network to ONNX (for --backend onnxruntime).")
    ap.add_argument("model", help="Keras model (.keras/.h5) or convert.py -w weights file")
    ap.add_argument("output", help="output .onnx file")
    ap.add_argument("--size", type=positive_int, default=None,
                    help="fix the input to SIZE x SIZE (multiple of 32); default: any size")
    ap.add_argument("--opset", type=number_type(int, 7), default=DEFAULT_OPSET,
                    help=f"ONNX opset (default {DEFAULT_OPSET})")
    ap.add_argument("--method", choices=("auto", "native", "tf2onnx"), default="auto",
                    help="native: written from the Keras layers (default via auto); tf2onnx: any TF graph, "
                         "needs ~60x the weights' size in memory")
    return ap


def _run(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.model):
        raise UsageError(f"model file not found: {args.model}")
    size = None if args.size is None else parse_size(str(args.size), "--size")
    check_output_file(args.output, "output", [args.model])
    try:
        model = load_model(args.model)
        proto = export_onnx(model, size, args.opset, method=args.method)
    except (OnnxUnavailableError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    save_onnx(proto, args.output)
    print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Export the model named on the command line; exit 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
