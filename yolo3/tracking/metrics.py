"""Tracking metrics on NumPy and SciPy: HOTA (with DetA, AssA, LocA), CLEAR MOT (MOTA, MOTP, IDSW, MT/PT/ML,
Frag) and the identity metrics (IDF1, IDP, IDR), with TrackEval's definitions (Luiten et al., IJCV 2021;
Bernardin & Stiefelhagen 2008; Ristani et al. 2016) so that the numbers equal TrackEval's.

Matching is on box IoU; CLEAR and identity count a match at IoU >= 0.5, HOTA averages over the 19
thresholds alpha = 0.05, 0.10, ... 0.95. Sequences are combined as TrackEval does: counts summed,
AssA (and AssRe, AssPr, LocA) weighted by each sequence's true positives at each alpha.

Ground-truth rows flagged 0 (MOTChallenge's 7th column) are not evaluated; a tracker box matched to one
(Hungarian on IoU >= 0.5) is removed too, so it counts neither as a match nor as a false positive
(TrackEval does this for MOT17's distractor classes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .association import iou_xyxy
from .base import TrackingError
from .mot import MotRows, iter_frames

__all__ = ["SequenceData", "prepare_sequence", "hota", "clear_mot", "identity", "evaluate_sequence",
           "combine", "summary", "ALPHAS"]

#: HOTA's localisation thresholds
ALPHAS = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo(float).eps


@dataclass
class SequenceData:
    """One sequence, ids renumbered 0..n-1: per frame the gt ids (G_t,), tracker ids (T_t,) and IoU (G_t, T_t)."""

    gt_ids: list[np.ndarray] = field(default_factory=list)
    tracker_ids: list[np.ndarray] = field(default_factory=list)
    similarity: list[np.ndarray] = field(default_factory=list)
    num_gt_ids: int = 0
    num_tracker_ids: int = 0

    @property
    def num_gt_dets(self) -> int:
        return sum(len(g) for g in self.gt_ids)

    @property
    def num_tracker_dets(self) -> int:
        return sum(len(t) for t in self.tracker_ids)


def _ignored_tracker_boxes(gt_boxes: np.ndarray, ignored: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Tracker rows matched (Hungarian, IoU >= 0.5) to an ignored gt box."""
    if not ignored.any() or not len(boxes):
        return np.zeros(0, np.int64)
    score = iou_xyxy(gt_boxes, boxes)
    score[score < 0.5 - _EPS] = 0
    rows, cols = linear_sum_assignment(-score)
    ok = score[rows, cols] > _EPS
    return cols[ok & ignored[rows]]


def prepare_sequence(gt: MotRows, tracks: MotRows, num_frames: int | None = None, name: str = "") -> SequenceData:
    """Frame by frame ids and IoUs of ``gt`` and ``tracks`` (frames 1..``num_frames``, default the last of either).

    Raises:
        TrackingError: an id appears twice in one frame of either file.
    """
    last = max(gt.num_frames, tracks.num_frames) if num_frames is None else num_frames
    gt_map = {v: i for i, v in enumerate(np.unique(gt.ids[gt.scores != 0]))}
    data = SequenceData()
    kept_tracker_ids: list[np.ndarray] = []
    for (frame, g), (_, t) in zip(iter_frames(gt, last), iter_frames(tracks, last)):
        for what, rows, ids in (("ground truth", g, gt.ids), ("tracks", t, tracks.ids)):
            if len(np.unique(ids[rows])) != len(rows):
                raise TrackingError(f"{name or 'sequence'}: frame {frame} of the {what} has an id twice")
        ignored = gt.scores[g] == 0
        drop = _ignored_tracker_boxes(gt.boxes[g], ignored, tracks.boxes[t])
        t = np.delete(t, drop)
        g = g[~ignored]
        data.gt_ids.append(np.array([gt_map[v] for v in gt.ids[g]], np.int64))
        kept_tracker_ids.append(tracks.ids[t])
        data.similarity.append(iou_xyxy(gt.boxes[g], tracks.boxes[t]))
    tracker_values = np.unique(np.concatenate(kept_tracker_ids)) if kept_tracker_ids else np.zeros(0, np.int64)
    tracker_map = {v: i for i, v in enumerate(tracker_values)}
    data.tracker_ids = [np.array([tracker_map[v] for v in ids], np.int64) for ids in kept_tracker_ids]
    data.num_gt_ids, data.num_tracker_ids = len(gt_map), len(tracker_map)
    return data


def _alignment(data: SequenceData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HOTA's global alignment score (gt id x tracker id) and the detections per gt id and tracker id."""
    potential = np.zeros((data.num_gt_ids, data.num_tracker_ids))
    gt_count = np.zeros((data.num_gt_ids, 1))
    tracker_count = np.zeros((1, data.num_tracker_ids))
    for g, t, sim in zip(data.gt_ids, data.tracker_ids, data.similarity):
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        norm = np.divide(sim, denom, out=np.zeros_like(sim), where=denom > _EPS)
        potential[g[:, None], t[None, :]] += norm
        gt_count[g] += 1
        tracker_count[0, t] += 1
    return potential / (gt_count + tracker_count - potential), gt_count, tracker_count


def hota(data: SequenceData) -> dict:
    """HOTA's per-alpha counts and association scores of one sequence (keys HOTA_TP, HOTA_FN, HOTA_FP,
    AssA, AssRe, AssPr, LocA, each (19,)); :func:`summary` derives DetA and HOTA."""
    n = len(ALPHAS)
    res = {k: np.zeros(n) for k in ("HOTA_TP", "HOTA_FN", "HOTA_FP", "AssA", "AssRe", "AssPr", "LocA")}
    if data.num_tracker_dets == 0 or data.num_gt_dets == 0:
        res["HOTA_FN"][:], res["HOTA_FP"][:] = data.num_gt_dets, data.num_tracker_dets
        res["LocA"][:] = 1.0
        return res
    align, gt_count, tracker_count = _alignment(data)
    matches = np.zeros((n, data.num_gt_ids, data.num_tracker_ids))
    for g, t, sim in zip(data.gt_ids, data.tracker_ids, data.similarity):
        if not len(g) or not len(t):
            res["HOTA_FP"] += len(t)
            res["HOTA_FN"] += len(g)
            continue
        rows, cols = linear_sum_assignment(-(align[g[:, None], t[None, :]] * sim))
        for a, alpha in enumerate(ALPHAS):
            ok = sim[rows, cols] >= alpha - _EPS
            count = int(ok.sum())
            res["HOTA_TP"][a] += count
            res["HOTA_FN"][a] += len(g) - count
            res["HOTA_FP"][a] += len(t) - count
            if count:
                res["LocA"][a] += sim[rows[ok], cols[ok]].sum()
                matches[a, g[rows[ok]], t[cols[ok]]] += 1
    tp = np.maximum(1, res["HOTA_TP"])
    for a in range(n):
        m = matches[a]
        res["AssA"][a] = np.sum(m * m / np.maximum(1, gt_count + tracker_count - m)) / tp[a]
        res["AssRe"][a] = np.sum(m * m / np.maximum(1, gt_count)) / tp[a]
        res["AssPr"][a] = np.sum(m * m / np.maximum(1, tracker_count)) / tp[a]
    res["LocA"] = np.maximum(1e-10, res["LocA"]) / np.maximum(1e-10, res["HOTA_TP"])
    return res


def clear_mot(data: SequenceData, threshold: float = 0.5) -> dict:
    """CLEAR MOT counts of one sequence: CLR_TP, CLR_FN, CLR_FP, IDSW, MOTP_sum, MT, PT, ML, Frag, frames."""
    res = dict.fromkeys(("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MOTP_sum", "MT", "PT", "ML", "Frag"), 0)
    res["CLR_Frames"] = len(data.gt_ids)
    if data.num_tracker_dets == 0 or data.num_gt_dets == 0:
        res["CLR_FN"], res["CLR_FP"], res["ML"] = data.num_gt_dets, data.num_tracker_dets, data.num_gt_ids
        return res
    gt_count, gt_matched, gt_frag = (np.zeros(data.num_gt_ids) for _ in range(3))
    prev_any = np.full(data.num_gt_ids, np.nan)   # tracker id last matched to each gt id (any frame before)
    prev_frame = np.full(data.num_gt_ids, np.nan)  # tracker id matched in the previous frame
    for g, t, sim in zip(data.gt_ids, data.tracker_ids, data.similarity):
        if not len(g) or not len(t):
            res["CLR_FP"] += len(t)
            res["CLR_FN"] += len(g)
            gt_count[g] += 1  # TrackEval keeps the previous frame's matches over such a frame
            continue
        score = 1000.0 * (t[None, :] == prev_frame[g[:, None]]) + sim
        score[sim < threshold - _EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > _EPS
        rows, cols = rows[ok], cols[ok]
        mg, mt = g[rows], t[cols]
        before = prev_any[mg]
        res["IDSW"] += int(np.sum(~np.isnan(before) & (mt != before)))
        gt_count[g] += 1
        gt_matched[mg] += 1
        untracked = np.isnan(prev_frame)
        prev_any[mg] = mt
        prev_frame[:] = np.nan
        prev_frame[mg] = mt
        gt_frag += untracked & ~np.isnan(prev_frame)
        res["CLR_TP"] += len(mg)
        res["CLR_FN"] += len(g) - len(mg)
        res["CLR_FP"] += len(t) - len(mg)
        res["MOTP_sum"] += float(sim[rows, cols].sum())
    ratio = gt_matched[gt_count > 0] / gt_count[gt_count > 0]
    res["MT"] = int(np.sum(ratio > 0.8))
    res["PT"] = int(np.sum(ratio >= 0.2)) - res["MT"]
    res["ML"] = data.num_gt_ids - res["MT"] - res["PT"]
    res["Frag"] = int(np.sum(gt_frag[gt_frag > 0] - 1))
    return res


def identity(data: SequenceData, threshold: float = 0.5) -> dict:
    """Identity counts of one sequence (IDTP, IDFN, IDFP): the one-to-one gt id <-> tracker id assignment
    that minimises IDFN + IDFP, a frame's pair counting as a match at IoU >= ``threshold``."""
    if data.num_tracker_dets == 0 or data.num_gt_dets == 0:
        return {"IDTP": 0, "IDFN": data.num_gt_dets, "IDFP": data.num_tracker_dets}
    ng, nt = data.num_gt_ids, data.num_tracker_ids
    potential = np.zeros((ng, nt))
    gt_count, tracker_count = np.zeros(ng), np.zeros(nt)
    for g, t, sim in zip(data.gt_ids, data.tracker_ids, data.similarity):
        rows, cols = np.nonzero(sim >= threshold)
        potential[g[rows], t[cols]] += 1
        gt_count[g] += 1
        tracker_count[t] += 1
    fn = np.zeros((ng + nt, ng + nt))
    fp = np.zeros((ng + nt, ng + nt))
    fn[:ng, :nt] = gt_count[:, None] - potential        # gt id i paired with tracker id j
    fn[:ng, nt:] = 1e10
    fn[np.arange(ng), nt + np.arange(ng)] = gt_count    # gt id i left unmatched
    fp[:ng, :nt] = tracker_count[None, :] - potential
    fp[ng:, :nt] = 1e10
    fp[ng + np.arange(nt), np.arange(nt)] = tracker_count  # tracker id j left unmatched
    rows, cols = linear_sum_assignment(fn + fp)
    idfn, idfp = int(fn[rows, cols].sum()), int(fp[rows, cols].sum())
    return {"IDTP": int(gt_count.sum()) - idfn, "IDFN": idfn, "IDFP": idfp}


def evaluate_sequence(gt: MotRows, tracks: MotRows, num_frames: int | None = None, name: str = "") -> dict:
    """Every raw count of one sequence (HOTA, CLEAR and identity); :func:`summary` turns it into metrics."""
    data = prepare_sequence(gt, tracks, num_frames, name)
    return {**hota(data), **clear_mot(data), **identity(data)}


_SUMMED = ("HOTA_TP", "HOTA_FN", "HOTA_FP", "CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MOTP_sum", "MT", "PT", "ML",
           "Frag", "CLR_Frames", "IDTP", "IDFN", "IDFP")


def combine(results: list[dict]) -> dict:
    """The raw counts of several sequences combined (TrackEval's COMBINED_SEQ)."""
    out = {k: sum(r[k] for r in results) for k in _SUMMED}
    tp = np.maximum(1.0, out["HOTA_TP"])
    for k in ("AssA", "AssRe", "AssPr"):
        out[k] = sum(r[k] * r["HOTA_TP"] for r in results) / tp
    out["LocA"] = np.maximum(1e-10, sum(r["LocA"] * r["HOTA_TP"] for r in results)) / np.maximum(1e-10,
                                                                                                  out["HOTA_TP"])
    return out


def summary(raw: dict) -> dict[str, float]:
    """The metrics people read, from raw counts: HOTA, DetA, AssA, LocA (means over alpha, 0..1), MOTA,
    MOTP, IDF1, IDP, IDR (0..1), IDSW, MT, PT, ML, Frag, FP, FN (counts)."""
    tp, fn, fp = raw["HOTA_TP"], raw["HOTA_FN"], raw["HOTA_FP"]
    det_a = tp / np.maximum(1, tp + fn + fp)
    hota_a = np.sqrt(det_a * raw["AssA"])
    clr = raw["CLR_TP"] + raw["CLR_FN"]
    out = {"HOTA": hota_a.mean(), "DetA": det_a.mean(), "AssA": np.mean(raw["AssA"]), "LocA": np.mean(raw["LocA"]),
           "MOTA": (raw["CLR_TP"] - raw["CLR_FP"] - raw["IDSW"]) / max(1.0, clr),
           "MOTP": raw["MOTP_sum"] / max(1.0, raw["CLR_TP"]),
           "IDF1": raw["IDTP"] / max(1.0, raw["IDTP"] + 0.5 * raw["IDFP"] + 0.5 * raw["IDFN"]),
           "IDP": raw["IDTP"] / max(1.0, raw["IDTP"] + raw["IDFP"]),
           "IDR": raw["IDTP"] / max(1.0, raw["IDTP"] + raw["IDFN"])}
    out = {k: float(v) for k, v in out.items()}
    out.update({k: int(raw[k]) for k in ("IDSW", "MT", "PT", "ML", "Frag")})
    out.update({"FP": int(raw["CLR_FP"]), "FN": int(raw["CLR_FN"])})
    return out
