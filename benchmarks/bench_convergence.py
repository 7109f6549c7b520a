"""Convergence benchmark: YOLOv3-tiny trained with train.py on generated shapes data reaches
mAP@0.5 >= 0.9 on a held-out split, measured with eval.py.

    python benchmarks/bench_convergence.py --out /tmp/bench_conv [--num 500] [--input-size 256] [--epochs 4 36]

Steps: (1) ``python -m yolo3.cli.shapes`` (``yolo3-shapes``) writes train/val splits; (2) IoU k-means anchors
for the letterboxed training boxes; (3) ``train.py --model tiny`` starting from Darknet's COCO yolov3-tiny
weights (``--weights auto``: yolo3.modeling.pretrained.fetch_weights + yolo3.modeling.darknet_weights.convert;
the heads, 255 channels there, are skipped and trained anew) with the usual two stages, or from scratch
(``--weights none``: ``--epochs 0 N --freeze-body 0``), then ``--finetune-epochs`` more epochs at a tenth of
the stage-2 learning rate from that model (the step ReduceLROnPlateau takes once the validation loss stalls,
taken by hand to fit the time budget); (4) ``eval.py`` on the held-out split (or, where eval.py is absent,
yolo3.inference.detector + yolo3.evaluation.metrics, and the result says so); (5) the loss / val_loss / val
mAP curves as ``docs/img/training_convergence.png`` and a JSON summary.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kmeans_anchors_iou(wh: np.ndarray, k: int, seed: int = 0, iters: int = 300) -> np.ndarray:
    """Darknet-style anchors: k-means of box sizes (N, 2) with 1 - IoU distance, sorted by area."""
    rng = np.random.default_rng(seed)
    centers = wh[rng.choice(len(wh), k, replace=False)].astype(np.float64)
    for _ in range(iters):
        inter = np.minimum(wh[:, None, 0], centers[None, :, 0]) * np.minimum(wh[:, None, 1], centers[None, :, 1])
        iou = inter / (wh[:, None, 0] * wh[:, None, 1] + centers[None, :, 0] * centers[None, :, 1] - inter)
        labels = iou.argmax(1)
        new = np.array([np.median(wh[labels == j], 0) if np.any(labels == j) else centers[j] for j in range(k)])
        if np.allclose(new, centers):
            break
        centers = new
    return centers[np.argsort(centers[:, 0] * centers[:, 1])]


def letterboxed_sizes(annotation: str, input_size: int) -> np.ndarray:
    from PIL import Image

    from yolo3.datasets.annotations import iter_annotations

    sizes = []
    for item in iter_annotations(annotation):
        with Image.open(item.path) as im:
            w, h = im.size
        s = min(input_size / w, input_size / h)
        b = item.boxes
        sizes.append(np.stack([(b[:, 2] - b[:, 0]) * s, (b[:, 3] - b[:, 1]) * s], 1))
    return np.concatenate(sizes)


def run(cmd: list[str], log_path: str) -> float:
    print("+", " ".join(cmd), flush=True)
    t0 = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}); see {log_path}")
    return time.time() - t0


def evaluate(model_path: str, val_ann: str, classes: str, out: str, input_size: int) -> tuple[float, str]:
    eval_py = os.path.join(ROOT, "eval.py")
    if os.path.isfile(eval_py):
        json_path = os.path.join(out, "eval.json")
        log = os.path.join(out, "eval.log")
        cmd = [sys.executable, eval_py, "--model", model_path, "--annotation", val_ann, "--classes", classes]
        help_text = subprocess.run([sys.executable, eval_py, "--help"], cwd=ROOT, capture_output=True, text=True).stdout
        for flag, extra in (("--json", [json_path]), ("--size", [str(input_size)]), ("--no-coco", []),
                            ("--out", [os.path.join(out, "eval")])):
            if flag in help_text:
                cmd += [flag, *extra]
        run(cmd, log)
        text = open(log, encoding="utf-8").read()
        if os.path.isfile(json_path):
            data = json.load(open(json_path, encoding="utf-8"))
            for key in ("mAP", "map", "mean_ap", "mAP@0.5", "map50"):
                if key in data:
                    return float(data[key]), "eval.py"
        m = re.findall(r"mAP[^0-9]*([0-9.]+)", text)
        if m:
            value = float(m[-1])
            return (value / 100 if value > 1 else value), "eval.py"
        print(f"could not read the mAP from eval.py's output ({log}); using yolo3.evaluation.metrics", flush=True)
    from yolo3.datasets.annotations import read_annotations
    from yolo3.datasets.imageio import read_image_rgb
    from yolo3.evaluation.metrics import evaluate_voc
    from yolo3.inference.detector import Detector

    det = Detector(model_path, classes_path=classes, score=0.005, size=input_size)
    gts = read_annotations(val_ann)
    dets = []
    for i in range(0, len(gts), 8):
        dets += det.detect([read_image_rgb(g.path) for g in gts[i:i + 8]])
    result = evaluate_voc(gts, dets, det.num_classes, iou_threshold=0.5)
    return float(result.mean_ap), "yolo3.inference.detector + yolo3.evaluation.metrics (eval.py absent)"


def plot(csv_paths: list[str], png: str, title: str) -> dict:
    """Loss / val loss / val mAP against epochs of one or more consecutive runs' train.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, epoch = [], []
    for path in csv_paths:
        part = list(csv.DictReader(open(path, encoding="utf-8")))
        offset = epoch[-1] if epoch else 0
        epoch += [offset + int(r["epoch"]) + 1 - int(part[0]["epoch"]) for r in part]
        rows += part
    series = {k: [float(r[k]) if r.get(k) not in (None, "", "NA") else math.nan for r in rows]
              for k in ("loss", "val_loss", "val_map")}
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epoch, series["loss"], label="train loss")
    ax.plot(epoch, series["val_loss"], label="val loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (sum / image)")
    ax2 = ax.twinx()
    pts = [(e, v) for e, v in zip(epoch, series["val_map"]) if np.isfinite(v)]
    if pts:
        ax2.plot(*zip(*pts), "o-", color="tab:green", label="val mAP@0.5")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("mAP@0.5")
    ax2.axhline(0.9, color="tab:green", ls=":", lw=1)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return {"epoch": epoch, **series}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/tmp/bench_convergence", help="work folder (data, logs, model)")
    p.add_argument("--num", type=int, default=500, help="images generated (20%% held out)")
    p.add_argument("--image-size", type=int, default=256, help="longer side of the generated images")
    p.add_argument("--radius", type=float, nargs=2, default=[0.04, 0.22], help="object radius range (x image size)")
    p.add_argument("--input-size", type=int, default=256, help="network input")
    p.add_argument("--epochs", type=int, nargs=2, default=[4, 36], help="frozen and unfrozen epochs")
    p.add_argument("--finetune-epochs", type=int, default=6,
                   help="then this many epochs at --finetune-lr from the result (a manual ReduceLROnPlateau step)")
    p.add_argument("--finetune-lr", type=float, default=3e-5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, nargs=2, default=[1e-3, 3e-4])
    p.add_argument("--freeze-body", type=int, default=1)
    p.add_argument("--weights", default="auto", help="auto (Darknet COCO yolov3-tiny), none (scratch) or a file")
    p.add_argument("--map-every", type=int, default=3)
    p.add_argument("--png", default=os.path.join(ROOT, "docs", "img", "training_convergence.png"))
    p.add_argument("--reuse", action="store_true",
                   help="skip data and training when <out>/logs/trained_final.keras exists (evaluate and plot)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train.py flags")
    args = p.parse_args()
    sys.path.insert(0, ROOT)
    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.out, "data")
    t_start = time.time()
    log_dir = os.path.join(args.out, "logs")
    reuse = args.reuse and os.path.isfile(os.path.join(log_dir, "trained_final.keras"))
    if not reuse:
        run([sys.executable, "-m", "yolo3.cli.shapes", data, "--num", str(args.num), "--size",
             str(args.image_size), "--seed", "0", "--val-fraction", "0.2", "--radius", *map(str, args.radius),
             "--quiet"], os.path.join(args.out, "shapes.log"))
    train_ann, val_ann = os.path.join(data, "train.txt"), os.path.join(data, "val.txt")
    classes = os.path.join(data, "classes.txt")
    anchors_path = os.path.join(args.out, "anchors.txt")
    if not reuse:
        anchors = kmeans_anchors_iou(letterboxed_sizes(train_ann, args.input_size), 6)
        with open(anchors_path, "w", encoding="utf-8") as f:
            f.write(",  ".join(f"{w:.1f},{h:.1f}" for w, h in anchors) + "\n")
    from yolo3.datasets.annotations import read_anchors

    anchors = read_anchors(anchors_path)
    weights_flags, epochs, freeze = [], list(args.epochs), args.freeze_body
    weights = args.weights
    if weights == "auto" and reuse:
        weights = os.path.join(args.out, "yolov3-tiny-coco.keras")
    if weights == "auto":
        try:
            from yolo3.modeling.darknet_weights import convert
            from yolo3.modeling.pretrained import fetch_weights
            from yolo3.modeling.saving import save_model

            darknet = fetch_weights("yolov3-tiny")
            cfg = os.path.join(ROOT, "yolo3", "resources", "yolov3-tiny.cfg")
            weights = os.path.join(args.out, "yolov3-tiny-coco.keras")
            save_model(convert(cfg, darknet, progress=False), weights)
        except Exception as exc:  # noqa: BLE001 - no network: fall back to training from scratch
            print(f"no pretrained yolov3-tiny ({exc}); training from scratch", flush=True)
            weights = "none"
    if weights == "none":
        epochs, freeze = [0, sum(args.epochs)], 0
    else:
        weights_flags = ["--weights", weights]
    cmd = [sys.executable, "train.py", "--model", "tiny", "--annotation", train_ann, "--val-annotation", val_ann,
           "--classes", classes, "--anchors", anchors_path, "--input-size", str(args.input_size),
           "--epochs", str(epochs[0]), str(epochs[1]), "--batch-size", str(args.batch_size),
           "--lr", str(args.lr[0]), str(args.lr[1]), "--freeze-body", str(freeze), *weights_flags,
           "--map-every", str(args.map_every), "--log-dir", log_dir, "--seed", "0", "--verbose", "2", *args.extra]
    if reuse:
        m = re.findall(r"saved the inference model to .* \((\d+) s\)", open(os.path.join(args.out, "train.log")).read())
        train_s = float(m[-1]) if m else float(os.environ.get("BENCH_TRAIN_SECONDS", "nan"))
    else:
        train_s = run(cmd, os.path.join(args.out, "train.log"))
    model_path = os.path.join(log_dir, "trained_final.keras")
    csvs = [os.path.join(log_dir, "train.csv")]
    ft_cmd = []
    if args.finetune_epochs > 0:
        ft_dir = os.path.join(args.out, "logs_ft")
        ft_cmd = [sys.executable, "train.py", "--model", "tiny", "--annotation", train_ann, "--val-annotation", val_ann,
                  "--classes", classes, "--anchors", anchors_path, "--input-size", str(args.input_size),
                  "--epochs", "0", str(args.finetune_epochs), "--batch-size", str(args.batch_size),
                  "--lr", str(args.finetune_lr), str(args.finetune_lr), "--freeze-body", "0", "--weights", model_path,
                  "--map-every", "2", "--log-dir", ft_dir, "--seed", "1", "--verbose", "2"]
        if reuse and os.path.isfile(os.path.join(ft_dir, "trained_final.keras")):
            m = re.findall(r"saved the inference model to .* \((\d+) s\)",
                           open(os.path.join(args.out, "train_ft.log")).read())
            train_s += float(m[-1]) if m else float("nan")
        else:
            train_s += run(ft_cmd, os.path.join(args.out, "train_ft.log"))
        model_path = os.path.join(ft_dir, "trained_final.keras")
        csvs.append(os.path.join(ft_dir, "train.csv"))
    m_ap, how = evaluate(model_path, val_ann, classes, args.out, args.input_size)
    start = "from scratch" if weights == "none" else "from COCO weights"
    curves = plot(csvs, args.png,
                  f"YOLOv3-tiny {start}, shapes {args.num} images, {args.input_size}x{args.input_size}")
    result = {
        "map50_heldout": m_ap, "measured_with": how, "train_seconds": round(train_s, 1),
        "total_seconds": round(time.time() - t_start, 1), "images_train": int(args.num * 0.8),
        "images_val": args.num - int(args.num * 0.8),
        "settings": vars(args) | {"anchors": anchors.round(1).tolist(), "weights_used": weights},
        "curves": curves, "train_command": " ".join(cmd), "finetune_command": " ".join(ft_cmd),
    }
    with open(os.path.join(args.out, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "curves"}, indent=1))
    print(f"mAP@0.5 on the held-out split: {m_ap:.4f} ({'PASS' if m_ap >= 0.9 else 'FAIL'} >= 0.9)")
    return 0 if m_ap >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
