"""``track.py`` / ``yolo3-track`` / ``python -m yolo3.cli.track``: track detections that already exist.

DET is a MOTChallenge detection file (``frame,-1,x,y,w,h,score[,class]``), a folder of them (one a
sequence) or a MOTChallenge folder (``<seq>/det/det.txt``); OUT gets MOTChallenge tracks
(``frame,id,x,y,w,h,score,-1,-1,-1``), a file for a file, a folder of ``<seq>.txt`` for a folder.
Imports no TensorFlow. Exit codes: 0 done, 2 a user error (missing file, malformed line as file:line,
bad option, an output that is an input).
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys
import time

from tqdm import tqdm

from ..inference.tracking_video import VideoTracking, track_video
from ..inference.video import VideoStats
from ..tracking import TRACKERS, ByteTracker, Tracker, TrackingError, make_tracker
from ..tracking.counting import parse_line
from ..tracking.mot import iter_frames, mot_lines, read_mot, read_seqinfo, sequence_files, write_mot
from .common import (
    HelpFormatter,
    UsageError,
    check_threshold,
    fraction,
    non_negative_int,
    positive_float,
    prog_name,
    run_tool,
)

__all__ = ["build_parser", "add_tracker_arguments", "tracker_from_args", "track_file", "add_video_tracking_arguments",
           "check_video_tracking", "detector_score", "track_video_from_args", "main"]

SCRIPT, MODULE = "track.py", "yolo3.cli.track"


def add_tracker_arguments(ap: argparse.ArgumentParser) -> None:
    """The tracker parameters (ultralytics' names), shared by track.py and yolo_video.py --track."""
    g = ap.add_argument_group("tracker parameters (ultralytics' names; SORT uses match/new/buffer/min-hits)")
    g.add_argument("--track-high-thresh", type=fraction, default=None,
                   help="bytetrack: detections scoring this or more are matched first (default 0.4)")
    g.add_argument("--track-low-thresh", type=fraction, default=None,
                   help="bytetrack: detections scoring this or more (below the high one) are matched second; "
                        "lower ones are ignored (default 0.1)")
    g.add_argument("--new-track-thresh", type=fraction, default=None,
                   help="smallest score that starts a track (default: bytetrack 0.5, sort 0.25)")
    g.add_argument("--track-buffer", type=non_negative_int, default=None,
                   help="frames (at 30 fps) a lost track is kept (default: bytetrack 60, sort 30)")
    g.add_argument("--match-thresh", type=fraction, default=None,
                   help="largest matching cost 1 - IoU (x score with --fuse-score) (default: bytetrack 0.8, sort 0.7)")
    g.add_argument("--fuse-score", action=argparse.BooleanOptionalAction, default=None,
                   help="bytetrack: match on IoU x detection score instead of IoU alone (default: off)")
    g.add_argument("--min-hits", type=non_negative_int, default=None,
                   help="frames in a row before a track is reported (default: bytetrack 2, sort 3)")
    g.add_argument("--per-class", action="store_true",
                   help="never match across classes (default: class-agnostic, a track keeps its majority class)")


def tracker_from_args(args: argparse.Namespace, name: str, frame_rate: float) -> Tracker:
    """A new tracker ``name`` ("bytetrack" or "sort") with the parameters given on the command line.

    Raises:
        UsageError: a threshold outside [0, 1] or a bad buffer/min-hits (TrackingError for the rest).
    """
    for flag in ("track_high_thresh", "track_low_thresh", "new_track_thresh", "match_thresh"):
        value = getattr(args, flag)
        if value is not None:
            check_threshold(value, "--" + flag.replace("_", "-"))
    if (args.track_buffer is not None and args.track_buffer < 0) or (args.min_hits is not None and args.min_hits < 1):
        raise UsageError("--track-buffer must be >= 0 and --min-hits >= 1")
    names = ["track_buffer", "new_track_thresh", "match_thresh", "min_hits"]
    if name == "bytetrack":
        names += ["track_high_thresh", "track_low_thresh", "fuse_score"]
    params = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    return make_tracker(name, frame_rate=frame_rate, per_class=args.per_class, **params)


def add_video_tracking_arguments(ap: argparse.ArgumentParser) -> None:
    """yolo_video.py's tracking flags: --track, --trails, --count-line, --mot-out and the tracker parameters."""
    g = ap.add_argument_group("tracking (video mode)")
    g.add_argument("--track", choices=sorted(TRACKERS), default=None,
                   help="track objects across frames: ids drawn on the boxes and in the JSON records (track_id)")
    g.add_argument("--trails", type=non_negative_int, default=0, metavar="N",
                   help="with --track: draw the last N centre points")
    g.add_argument("--count-line", dest="count_lines", action="append", default=[], metavar="X1,Y1,X2,Y2",
                   help="with --track: count tracks crossing this line (pixels), per class and direction; "
                        "repeat for several lines")
    g.add_argument("--mot-out", default=None, metavar="FILE",
                   help="with --track: write the tracks as MOTChallenge text (frame,id,x,y,w,h,score,-1,-1,-1)")
    add_tracker_arguments(ap)


def check_video_tracking(args: argparse.Namespace, inputs: list[str | None]) -> None:
    """The tracking flags of yolo_video.py: only in video mode, with --track, sane values, and a --mot-out
    that is no input (``inputs``) and lies in an existing folder. Parses --count-line in place.

    Raises:
        UsageError: a bad combination or value.
    """
    extra = [f for f, given in (("--trails", args.trails), ("--count-line", args.count_lines),
                                ("--mot-out", args.mot_out)) if given]
    if args.track is None:
        if extra:
            raise UsageError(f"{extra[0]} needs --track")
        return
    if args.input is None:
        raise UsageError("--track works on videos, webcams and folders of frames: give --input")
    if args.trails < 0:
        raise UsageError(f"--trails must be >= 0, got {args.trails}")
    try:
        args.count_lines = [parse_line(text) for text in args.count_lines]
    except TrackingError as exc:
        raise UsageError(f"--count-line: {exc}") from None
    tracker_from_args(args, args.track, 30.0)  # every tracker parameter checked before the model loads
    if args.mot_out:
        folder = os.path.dirname(os.path.abspath(args.mot_out))
        if not os.path.isdir(folder):
            raise UsageError(f"folder for --mot-out does not exist: {folder}")
        if any(p and os.path.realpath(p) == os.path.realpath(args.mot_out) for p in inputs):
            raise UsageError(f"--mot-out would overwrite an input: {args.mot_out}")


def detector_score(args: argparse.Namespace) -> float:
    """The detector's score threshold: --score, or lower for ByteTrack's second matching (--track-low-thresh)."""
    if args.track != "bytetrack":
        return args.score
    low = args.track_low_thresh
    if low is None:
        low = inspect.signature(ByteTracker).parameters["track_low_thresh"].default
    return min(args.score, low)


def track_video_from_args(args: argparse.Namespace, detector, records: list | None) -> VideoStats:
    """yolo_video.py --track: detect and track ``args.input``, write --mot-out, print the counts.

    Args:
        args: yolo_video.py's checked options.
        detector: the loaded :class:`~yolo3.inference.detector.Detector`.
        records: receives the JSON records (with ``track_id``), or None.
    """
    tracking = VideoTracking(tracker_from_args(args, args.track, 30.0), trails=args.trails, lines=args.count_lines,
                             min_score=args.score)
    try:
        stats = track_video(detector, args.input, tracking, output=args.output or None, batch_size=args.batch_size,
                            records=records, show=args.show, progress=not args.quiet, max_frames=args.max_frames)
    finally:  # an interrupted run keeps the frames tracked so far, as the video and JSON do
        if args.mot_out and tracking.frames:
            write_mot(args.mot_out, tracking.mot)
    ids = len({line.split(",", 2)[1] for line in tracking.mot})
    print(f"{ids} track(s) with {args.track}" + (f"; wrote {args.mot_out}" if args.mot_out else ""),
          file=sys.stderr)
    for line in tracking.count_lines(detector.class_names):
        print(line, file=sys.stderr)
    return stats


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the offline tracking tool.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    ap = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE), formatter_class=HelpFormatter,
        description="Track MOTChallenge detections offline (SORT or ByteTrack) and write MOTChallenge tracks.",
        epilog="Exit codes: 0 done; 2 user error (missing file, malformed line as file:line, bad option).")
    ap.add_argument("--det", required=True, help="detection file, folder of them, or MOTChallenge folder")
    ap.add_argument("--out", required=True, help="tracks file (for a file) or folder (for a folder)")
    ap.add_argument("--tracker", choices=sorted(TRACKERS), default="bytetrack", help="tracking algorithm")
    ap.add_argument("--fps", type=positive_float, default=None,
                    help="frame rate of the sequences (scales --track-buffer); default: seqinfo.ini's, else 30")
    add_tracker_arguments(ap)
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def track_file(det_path: str, out_path: str, tracker: Tracker, num_frames: int | None = None,
               progress: bool = False, name: str | None = None) -> tuple[int, float]:
    """Track one detection file into one MOTChallenge tracks file; returns (frames, seconds of tracking).

    Raises:
        MotFormatError: a malformed detection line (``file:line``) or an unwritable output.
    """
    det = read_mot(det_path, "det")
    lines: list[str] = []
    seconds = 0.0
    total = num_frames or det.num_frames
    bar = tqdm(iter_frames(det, num_frames), total=total, unit="frame", desc=name or os.path.basename(det_path),
               disable=not progress)
    for frame, rows in bar:
        start = time.perf_counter()
        tracks = tracker.update(det.boxes[rows], det.scores[rows], det.classes[rows])
        seconds += time.perf_counter() - start
        lines += mot_lines(frame, tracks)
    write_mot(out_path, lines)
    return total, seconds


def _outputs(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    """Sequence -> (detection file, output file); refuses an output that is an input."""
    inputs = sequence_files(args.det, "det")
    single = os.path.isfile(args.det)
    if single and os.path.isdir(args.out):
        raise UsageError(f"--out must be a file for a detection file, but {args.out} is a folder")
    if not single and os.path.isfile(args.out):
        raise UsageError(f"--out must be a folder for a folder of detections, but {args.out} is a file")
    folder = os.path.dirname(os.path.abspath(args.out)) if single else os.path.abspath(args.out)
    if single and not os.path.isdir(folder):
        raise UsageError(f"folder for --out does not exist: {folder}")
    pairs = {name: (path, args.out if single else os.path.join(args.out, f"{name}.txt"))
             for name, path in inputs.items()}
    given = {os.path.realpath(p) for p, _ in pairs.values()}
    clash = [out for _, out in pairs.values() if os.path.realpath(out) in given]
    if clash:
        raise UsageError(f"--out would overwrite an input: {clash[0]}")
    return pairs


def _run(args: argparse.Namespace) -> int:
    pairs = _outputs(args)
    if not os.path.isfile(args.det):
        os.makedirs(args.out, exist_ok=True)
    frames, seconds = 0, 0.0
    for name, (det_path, out_path) in pairs.items():
        length, rate = _sequence_info(det_path)
        tracker = tracker_from_args(args, args.tracker, args.fps or rate or 30.0)
        n, s = track_file(det_path, out_path, tracker, length, progress=not args.quiet, name=name)
        frames, seconds = frames + n, seconds + s
        if tracker.dropped:
            print(f"{name}: {tracker.dropped} detection(s) with a NaN or empty box dropped", file=sys.stderr)
    rate = frames / seconds if seconds > 0 else float("inf")
    print(f"{len(pairs)} sequence(s), {frames} frame(s) tracked with {args.tracker} at {rate:.0f} frames/s "
          f"(tracker only); wrote {args.out}", file=sys.stderr)
    return 0


def _sequence_info(det_path: str) -> tuple[int | None, float | None]:
    """(seqLength, frameRate) of the MOTChallenge ``seqinfo.ini`` of ``<seq>/det/det.txt``, where given."""
    info = read_seqinfo(det_path)
    length = int(info["seqlength"]) if info.get("seqlength", "").isdigit() else None
    try:
        rate = float(info["framerate"]) if "framerate" in info else None
    except ValueError:
        rate = None
    return length, rate if rate and rate > 0 else None


def main(argv: list[str] | None = None) -> int:
    """Run the offline tracking tool: 0 done, 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
