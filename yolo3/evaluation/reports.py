"""Per-class tables (CSV, Markdown) and precision-recall plots."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .metrics import COCOResult, VOCResult

__all__ = ["per_class_rows", "write_per_class_csv", "write_per_class_markdown", "plot_pr_curves"]


def per_class_rows(voc: VOCResult, class_names: Sequence[str], coco: COCOResult | None = None) -> list[dict]:
    """One dict per class: id, name, ground truth, detections, true positives, VOC AP, COCO AP / AP50."""
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
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["class_id"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _cell(v) for k, v in r.items()})


def write_per_class_markdown(path: str, rows: Sequence[dict], summary_lines: Iterable[str] = ()) -> None:
    header = list(rows[0]) if rows else ["class_id"]
    lines = [*(f"{s}  " for s in summary_lines), "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if k not in ("class",) else ":---" for k in header) + "|"]
    lines += ["| " + " | ".join(_cell(r[k]) if _cell(r[k]) else "-" for k in header) + " |" for r in rows]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).lstrip("\n") + "\n")


def plot_pr_curves(path: str, voc: VOCResult, class_names: Sequence[str], max_cols: int = 6) -> int:
    """Precision-recall curve (raw and interpolated envelope) of every class with ground truth, one grid PNG.

    Returns the number of curves drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [c for c in range(voc.num_classes) if voc.num_ground_truth[c] > 0]
    n = max(len(classes), 1)
    cols = min(max_cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(2.6 * cols, 6.0), 2.4 * rows + 0.6), dpi=80, squeeze=False)
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
    fig.savefig(path)
    plt.close(fig)
    return len(classes)
