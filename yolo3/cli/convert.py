"""``convert.py`` / ``yolo3-convert`` / ``python -m yolo3.cli.convert``: a Darknet cfg + weights to a
Keras model (keras-yolo3's convert.py command line).

The model's outputs are the raw head convolutions (NHWC), one per [yolo] section in cfg order;
anchors, masks, classes and scale_x_y travel inside the saved model.
"""
from __future__ import annotations

import argparse
import os
import sys

import keras

from ..core.heads import get_head_specs
from ..modeling.builder import build_model_from_cfg
from ..modeling.cfg import parse_cfg
from ..modeling.darknet_weights import load_darknet_weights
from ..modeling.saving import save_model, save_weights_file
from ..resources import resolve_data_path
from .common import UsageError, check_output_file, prog_name, run_tool

SCRIPT, MODULE = "convert.py", "yolo3.cli.convert"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the Darknet converter (keras-yolo3's flags included).

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    ap = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE),
        description="Convert a Darknet cfg + weights file to a Keras 3 model.",
        epilog="Full models (.keras or .h5) load with keras.models.load_model(path) after `import yolo3`.")
    ap.add_argument("config_path", type=resolve_data_path,
                    help="Darknet .cfg file (yolov3.cfg, yolov3-tiny.cfg, yolov3-spp.cfg: the bundled copy where "
                         "no such file is in the working directory, as keras-yolo3's README wrote them)")
    ap.add_argument("weights_path", help="Darknet .weights file")
    ap.add_argument("output_path", help="output: a .keras or .h5 full model; with -w, a weights file")
    ap.add_argument("-p", "--plot", "--plot_model", dest="plot", action="store_true",
                    help="also write a picture of the model next to the output (needs pydot + graphviz)")
    ap.add_argument("-w", "--weights_only", "--weights-only", dest="weights_only", action="store_true",
                    help="write weights only (with the cfg embedded), for train.py --weights")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return ap


def _check_paths(args: argparse.Namespace) -> None:
    """Inputs readable, output folder writable, output suffix and plotting possible; else :class:`UsageError`."""
    for label, path in (("cfg", args.config_path), ("weights", args.weights_path)):
        if not os.path.isfile(path):
            raise UsageError(f"{label} file not found: {path}")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{label} file is not readable: {path}")
    check_output_file(args.output_path, "output", [args.config_path, args.weights_path])
    if not args.weights_only and not args.output_path.endswith((".keras", ".h5")):
        raise UsageError(f"output must end in .keras or .h5 (or use -w for weights only): {args.output_path}")
    if args.plot:
        try:
            import pydot  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs pydot and graphviz: pip install pydot; apt-get install graphviz") from None


def _describe(args, model, header) -> None:
    major, minor, revision = header["version"]
    print(f"read {args.weights_path}: version {major}.{minor}.{revision}, seen {header['seen']}, "
          f"{header['values']:,} values, nothing left over")
    print(f"model {model.name}: {model.count_params():,} parameters, {len(model.outputs)} output(s)")
    try:
        specs = get_head_specs(model)
    except ValueError:
        specs = []
    for spec in specs:
        anchors = " ".join(f"{int(w)}x{int(h)}" if float(w).is_integer() and float(h).is_integer() else f"{w:g}x{h:g}"
                           for w, h in spec.anchors)
        print(f"  {spec.name}: {spec.num_classes} classes, anchors {anchors}, scale_x_y {spec.scale_x_y:g}")


def _plot(model, output_path: str) -> None:
    png = os.path.splitext(output_path)[0] + ".png"
    try:
        keras.utils.plot_model(model, to_file=png, show_shapes=True)
    except (ImportError, OSError) as exc:
        raise UsageError(f"could not plot the model: {exc}") from None
    print(f"saved model plot to {png}")


def _run(args: argparse.Namespace) -> int:
    _check_paths(args)
    progress = not args.quiet
    cfg = parse_cfg(args.config_path)
    model = build_model_from_cfg(cfg, progress=progress)
    header = load_darknet_weights(model, cfg, args.weights_path, progress=progress)
    _describe(args, model, header)
    try:
        if args.weights_only:
            save_weights_file(model, args.output_path, cfg.text, {"source_cfg": os.path.basename(args.config_path)})
            print(f"saved weights to {args.output_path}")
        else:
            save_model(model, args.output_path)
            print(f"saved model to {args.output_path}")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output_path}: {exc}") from None
    if args.plot:
        _plot(model, args.output_path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Convert the Darknet files named on the command line; 0 on success, 2 with ``prog: error: message``.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
