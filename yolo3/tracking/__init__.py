"""Multi-object tracking on NumPy and SciPy alone (no TensorFlow): SORT and ByteTrack behind one
interface, line counting, MOTChallenge files, the tracking metrics (HOTA, CLEAR MOT, identity) and a
synthetic MOT generator. Importing this package does not import TensorFlow (``yolo3/__init__.py``
defers it until Keras is imported); see docs/tracking.md.
"""
from .base import Tracker, TrackingError, Tracks
from .bytetrack import ByteTracker
from .sort import SortTracker

__all__ = ["Tracker", "Tracks", "TrackingError", "SortTracker", "ByteTracker", "TRACKERS", "make_tracker"]

#: tracker name -> class
TRACKERS = {"bytetrack": ByteTracker, "sort": SortTracker}


def make_tracker(name: str, **params) -> Tracker:
    """A new tracker by name (``"bytetrack"`` or ``"sort"``) with keyword parameters of its class.

    Raises:
        TrackingError: an unknown name.
    """
    if name not in TRACKERS:
        raise TrackingError(f"unknown tracker {name!r}; choose one of {', '.join(sorted(TRACKERS))}")
    return TRACKERS[name](**params)
