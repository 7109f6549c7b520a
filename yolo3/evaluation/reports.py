"""Reports of an evaluation: the console table, per-class tables (CSV, Markdown), precision-recall
plots, metrics JSON and COCO results JSON (``eval.py --out``)."""
from __future__ import annotations

import csv
import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..core.files import StagedFiles, atomic_open, atomic_path
from ..datasets.coco import default_category_ids, image_ids_for, read_sidecar, sidecar_path
from .detections_io import coco_results_json
from .metrics import COCOResult, VOCResult

if TYPE_CHECKING:
    from .run import EvaluationResult

__all__ = ["per_class_rows", "write_per_class_csv", "write_per_class_markdown", "plot_pr_curves", "format_table",
           "json_safe", "write_metrics_json", "coco_ids", "write_reports", "REPORT_FILES"]

#: the files :func:`write_reports` writes
REPORT_FILES = ("per_class.csv", "per_class.md", "pr_curves.png", "detections_coco.json", "metrics.json")


def per_class_rows(voc: VOCResult, class_names: Sequence[str], coco: COCOResult | None = None) -> list[dict]:
    """One dict per class: id, name, ground truth, detections, true positives, VOC AP, COCO AP / AP50.

    Args:
        voc: the VOC result.
        class_names: the class names (a missing name shows as the class id).
        coco: the COCO result, if computed (adds ``coco_ap`` and ``coco_ap50``).
    """
    rows = []
    for c in range(voc.num_classes):
        row = {"class_id": c, "class": class_names[c] if c < len(class_names) else str(c),
               "ground_truth": int(voc.num_ground_truth[c]), "detections": int(voc.num_detections[c]),
               "true_positives": int(voc.num_true_positives[c]), "voc_ap": float(voc.per_class_ap[c])}
        if coco is not None:
            row["coco_ap"] = float(coco.per_class_ap[c])
            row["coco_ap50"] = float(coco.per_class_ap50[c])
        rows.append(row)
    return rows


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.4f}"
    return str(v)


def write_per_class_csv(path: str, rows: Sequence[dict]) -> None:
    """One CSV row per class (:func:`per_class_rows`); NaN as an empty cell.

    Args:
        path: the file to write.
        rows: the per-class rows.
    """

    with atomic_open(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["class_id"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _cell(v) for k, v in r.items()})


def write_per_class_markdown(path: str, rows: Sequence[dict], summary_lines: Iterable[str] = ()) -> None:
    """A Markdown table of the per-class rows under the summary lines.

    Args:
        path: the file to write.
        rows: the per-class rows (:func:`per_class_rows`).
        summary_lines: lines shown above the table.
    """
    header = list(rows[0]) if rows else ["class_id"]
    lines = [*(f"{s}  " for s in summary_lines), "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if k not in ("class",) else ":---" for k in header) + "|"]
    lines += ["| " + " | ".join(_cell(r[k]) if _cell(r[k]) else "-" for k in header) + " |" for r in rows]
    with atomic_open(path) as f:
        f.write("\n".join(lines).lstrip("\n") + "\n")


def plot_pr_curves(path: str, voc: VOCResult, class_names: Sequence[str], max_cols: int = 6) -> int:
    """Precision-recall curve (raw and interpolated envelope) of every class with ground truth, one grid PNG.

    Returns the number of curves drawn.

    Args:
        path: the PNG file to write.
        voc: the VOC result (precision and recall per class).
        class_names: the class names, for the titles.
        max_cols: plots a row at most.
    """
    classes = [c for c in range(voc.num_classes) if voc.num_ground_truth[c] > 0]
    n = max(len(classes), 1)
    cols = min(max_cols, n)
    rows = int(np.ceil(n / cols))
    # a Figure of its own, no pyplot: no global backend or figure registry touched in the user's process
    fig = Figure(figsize=(max(2.6 * cols, 6.0), 2.4 * rows + 0.6), dpi=80)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, c in zip(axes.ravel(), classes):
        ax.set_visible(True)
        rec, prec = voc.recall[c], voc.precision[c]
        if len(rec):
            env = np.maximum.accumulate(prec[::-1])[::-1]
            ax.plot(rec, prec, color="tab:blue", lw=0.8, alpha=0.6)
            ax.step(np.concatenate([[0], rec]), np.concatenate([[env[0]], env]), where="pre", color="tab:red", lw=1.2)
        name = class_names[c] if c < len(class_names) else str(c)
        ax.set_title(f"{name}  AP {voc.per_class_ap[c]:.3f}", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=6)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{voc.metric_name} = {voc.mean_ap:.4f}  (blue: precision, red: interpolated)", fontsize=10)
    fig.supxlabel("recall", fontsize=8)
    fig.supylabel("precision", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    return len(classes)


def format_table(result: EvaluationResult) -> list[str]:
    """The per-class console table of an evaluation, one line a class, under a header line.

    Args:
        result: the evaluation.
    """
    nan = float("nan")
    rows = result.rows
    width = max(5, *(len(r["class"]) for r in rows))
    ap_col = f"AP@{result.voc.iou_threshold:g}"

    def f(v: float) -> str:
        return "      -" if v != v else f"{v:7.4f}"

    lines = [f"{'id':>3} {'class':<{width}} {'GT':>6} {'dets':>7} {'TP':>6} {ap_col:>7} {'COCO AP':>7} {'AP50':>7}"]
    lines += [f"{r['class_id']:>3} {r['class']:<{width}} {r['ground_truth']:>6} {r['detections']:>7} "
              f"{r['true_positives']:>6} {f(r['voc_ap'])} {f(r.get('coco_ap', nan))} {f(r.get('coco_ap50', nan))}"
              for r in rows]
    return lines


def json_safe(value: Any) -> Any:
    """``value`` with NaN as None (JSON has no NaN), tuples as lists.

    Args:
        value: dicts, lists, tuples and scalars, nested.
    """
    if isinstance(value, dict):
        return {k: json_safe(x) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(x) for x in value]
    if isinstance(value, float):
        return None if value != value else value
    return value


def write_metrics_json(path: str, metrics: dict) -> None:
    """Write the metrics (:meth:`EvaluationResult.metrics`) as indented JSON, NaN as null.

    Args:
        path: the file to write.
        metrics: the metrics dict.
    """
    with atomic_open(path) as fh:
        json.dump(json_safe(metrics), fh, indent=1)


def coco_ids(annotation: str, ground_truth, class_names: Sequence[str]) -> tuple[list[int], list[int], str]:
    """COCO image and category ids for a results JSON, and where they came from: the same ids
    ``yolo3-coco from-annotation`` gives the ground truth (the sidecar written by ``to-annotation``
    where it exists, else the default rules).

    Args:
        annotation: the annotation file (its sidecar is looked for beside it).
        ground_truth: its annotated images.
        class_names: the class names.
    """
    side = sidecar_path(annotation)
    if os.path.isfile(side):
        data = read_sidecar(side)
        if len(data["categories"]) == len(class_names):
            return (image_ids_for(ground_truth, data), [c["id"] for c in data["categories"]],
                    f"COCO ids from {side}")
    return (image_ids_for(ground_truth, None), default_category_ids(class_names),
            "default COCO ids, as `yolo3-coco from-annotation` numbers them")


def write_reports(out_dir: str, result: EvaluationResult) -> str:
    """Write :data:`REPORT_FILES` into ``out_dir`` (created), all of them or (on an error) none; returns
    where the COCO ids came from.

    Args:
        out_dir: the folder.
        result: the evaluation.

    Raises:
        OSError: a file cannot be written.
        CocoFormatError: a malformed categories sidecar.
    """
    os.makedirs(out_dir, exist_ok=True)
    summary = [result.headline, result.coco_line,
               f"evaluated {result.source} on {len(result.ground_truth)} images of {result.annotation}"]
    image_ids, category_ids, ids_note = coco_ids(result.annotation, result.ground_truth, result.class_names)
    with StagedFiles() as staged:
        write_per_class_csv(staged.path_for(os.path.join(out_dir, "per_class.csv")), result.rows)
        write_per_class_markdown(staged.path_for(os.path.join(out_dir, "per_class.md")), result.rows, summary)
        plot_pr_curves(staged.path_for(os.path.join(out_dir, "pr_curves.png")), result.voc, result.class_names)
        with open(staged.path_for(os.path.join(out_dir, "detections_coco.json")), "w", encoding="utf-8") as fh:
            json.dump(coco_results_json(result.detections, image_ids, category_ids), fh)
        metrics = dict(result.metrics(), detections_coco_ids=ids_note)
        write_metrics_json(staged.path_for(os.path.join(out_dir, "metrics.json")), metrics)
        staged.commit()
    return ids_note
