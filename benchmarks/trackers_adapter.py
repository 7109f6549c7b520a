"""Runs Roboflow's ``trackers`` (2.6.1) on MOTChallenge detection files, for bench_tracking.py.

Run with the Python of a separate environment that has ``trackers`` (it installs opencv-python, which
clashes with this project's opencv-python-headless, so it never enters the project's venv)::

    python3 -m venv /tmp/trackers-venv && /tmp/trackers-venv/bin/pip install trackers==2.6.1
    /tmp/trackers-venv/bin/python benchmarks/trackers_adapter.py bytetrack OUT_DIR DET_FILE...

Writes ``OUT_DIR/<sequence>.txt`` (MOTChallenge tracks; the package's -1 ids of unconfirmed tracks
left out, ids shifted to start at 1) for every ``.../<sequence>/det/det.txt`` given, and prints a
JSON line ``{"frames": n, "seconds": s}`` with the time spent in ``update`` alone. Imports nothing of
yolo3. Trackers run with their defaults.
"""
import json
import os
import sys
import time

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker, SORTTracker

TRACKERS = {"bytetrack": ByteTrackTracker, "sort": SORTTracker}


def frames_of(path):
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    last = int(table[:, 0].max()) if len(table) else 0
    for frame in range(1, last + 1):
        rows = table[table[:, 0] == frame]
        xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
        classes = rows[:, 7].astype(int) if rows.shape[1] > 7 else np.zeros(len(rows), int)
        yield frame, sv.Detections(xyxy=xyxy, confidence=rows[:, 6], class_id=classes)


def main(name, out_dir, det_files):
    frames, seconds = 0, 0.0
    for det in det_files:
        sequence = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(det))))
        tracker = TRACKERS[name]()
        lines = []
        for frame, detections in frames_of(det):
            start = time.perf_counter()
            result = tracker.update(detections)
            seconds += time.perf_counter() - start
            frames += 1
            for (x1, y1, x2, y2), ident, score in zip(result.xyxy, result.tracker_id, result.confidence):
                if ident >= 0:
                    lines.append(f"{frame},{ident + 1},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f}"
                                 ",-1,-1,-1\n")
        with open(os.path.join(out_dir, sequence + ".txt"), "w") as f:
            f.writelines(lines)
    print(json.dumps({"frames": frames, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
