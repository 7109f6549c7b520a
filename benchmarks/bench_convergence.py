"""Convergence benchmark: the README's training command (only the data paths, --input-size and
--epochs changed) trains YOLOv3-tiny from Darknet's COCO weights on generated shapes data to
held-out mAP@0.5 >= 0.9, on data from several generator seeds; measured with eval.py.

    python benchmarks/bench_convergence.py --out /tmp/bench_conv [--seeds 0 1 2] [--recipe default]
    python benchmarks/bench_convergence.py --out /tmp/bench_conv_old --recipe keras-yolo3 --seeds 0
    python benchmarks/bench_convergence.py --out /tmp/bench_v4t --model yolov4-tiny --epochs 10 50 --seeds 0 \
        [--extra --box-grad autodiff]

``--model`` other than tiny trains from scratch (no pretrained weights of them are reachable from this
machine), with kmeans anchors (6 for tiny models, else 9); its goal is held-out mAP@0.5 >= 0.8.

For each seed: (1) ``python -m yolo3.cli.shapes`` writes 400 training and 100 held-out images;
(2) ``kmeans.py`` computes 6 anchors for the letterboxed training boxes; (3) ``train.py --model tiny``
with the README's flags (``--weights`` Darknet's COCO yolov3-tiny converted by yolo3, its heads
skipped for the new class count) and ``--recipe`` (``default`` adds nothing to the command;
``keras-yolo3`` is the old recipe); (4) ``eval.py`` on the held-out images; (5) the loss / val
loss / val mAP / learning-rate curves of every seed in one picture (``--png``) and a JSON summary
(``<out>/result.json``) with the markdown rows for docs/benchmarks.md.
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


def run(cmd: list[str], log_path: str) -> float:
    print("+", " ".join(cmd), flush=True)
    t0 = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}); see {log_path}")
    return time.time() - t0


def evaluate(model_path: str, val_ann: str, classes: str, out: str, input_size: int) -> tuple[float, str]:
    """Held-out mAP@0.5 by eval.py (all-point VOC AP, the JSON's top-level ``mAP``)."""
    json_path = os.path.join(out, "eval.json")
    run([sys.executable, "eval.py", "--model", model_path, "--annotation", val_ann, "--classes", classes,
         "--size", str(input_size), "--no-coco", "--no-progress", "--json", json_path, "--out",
         os.path.join(out, "eval")], os.path.join(out, "eval.log"))
    return float(json.load(open(json_path, encoding="utf-8"))["mAP"]), "eval.py"


def coco_tiny(out: str) -> str:
    """Darknet's COCO yolov3-tiny as a Keras model under ``out`` (fetched once, cached by yolo3)."""
    path = os.path.join(out, "yolov3-tiny-coco.keras")
    if not os.path.isfile(path):
        from yolo3.modeling.darknet_weights import convert
        from yolo3.modeling.pretrained import fetch_weights
        from yolo3.modeling.saving import save_model

        cfg = os.path.join(ROOT, "yolo3", "resources", "yolov3-tiny.cfg")
        save_model(convert(cfg, fetch_weights("yolov3-tiny"), progress=False), path)
    return path


def one_seed(args, seed: int, weights: str) -> dict:
    """Data, anchors, the README's training command, eval.py: one seed's result."""
    out = os.path.join(args.out, f"seed{seed}")
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "data")
    train_ann, val_ann = os.path.join(data, "train.txt"), os.path.join(data, "val.txt")
    classes, anchors = os.path.join(data, "classes.txt"), os.path.join(out, "anchors.txt")
    log_dir = os.path.join(out, "logs")
    model_path = os.path.join(log_dir, "trained_final.keras")
    cmd = [sys.executable, "train.py", "--model", args.model, "--annotation", train_ann, "--val-annotation", val_ann,
           "--classes", classes, "--anchors", anchors]
    if weights:
        cmd += ["--weights", weights]
    cmd += ["--input-size", str(args.input_size), "--epochs", *map(str, args.epochs), "--log-dir", log_dir]
    if args.recipe != "default":
        cmd += ["--recipe", args.recipe]
    cmd += ["--verbose", "2", *args.extra]
    train_s = math.nan
    clusters = str(6 if "tiny" in args.model else 9)
    if not (args.reuse and os.path.isfile(model_path)):
        run([sys.executable, "-m", "yolo3.cli.shapes", data, "--num", str(args.num), "--size", str(args.image_size),
             "--seed", str(seed), "--val-fraction", "0.2", "--radius", *map(str, args.radius), "--quiet"],
            os.path.join(out, "shapes.log"))
        run([sys.executable, "kmeans.py", "--annotation", train_ann, "--num_clusters", clusters, "--input-size",
             str(args.input_size), "--out_file", anchors, "--no-progress"], os.path.join(out, "kmeans.log"))
        train_s = run(cmd, os.path.join(out, "train.log"))
    m_ap, how = evaluate(model_path, val_ann, classes, out, args.input_size)
    rows = list(csv.DictReader(open(os.path.join(log_dir, "train.csv"), encoding="utf-8")))
    curve = {k: [float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows]
             for k in ("loss", "val_loss", "val_map", "learning_rate")}
    schedule_path = os.path.join(log_dir, "schedule.json")
    schedule = json.load(open(schedule_path, encoding="utf-8")) if os.path.isfile(schedule_path) else None
    print(f"seed {seed}: held-out mAP@0.5 {m_ap:.4f} ({how}), training {train_s:.0f} s", flush=True)
    return {"seed": seed, "map50_heldout": m_ap, "measured_with": how, "train_seconds": round(train_s, 1),
            "train_command": " ".join(cmd), "schedule": schedule, "curve": curve}


def plot(results: list[dict], png: str, title: str) -> None:
    """Training loss, validation mAP and learning rate against epochs, one colour a seed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    ax_loss, ax_map, ax_lr = fig.subplots(1, 3)
    for i, r in enumerate(results):
        c, curve = f"C{i}", r["curve"]
        epochs = np.arange(1, len(curve["loss"]) + 1)
        ax_loss.plot(epochs, curve["loss"], color=c, label=f"seed {r['seed']} train")
        ax_loss.plot(epochs, curve["val_loss"], color=c, ls="--", label=f"seed {r['seed']} val")
        pts = [(e, v) for e, v in zip(epochs, curve["val_map"]) if np.isfinite(v)]
        if pts:
            ax_map.plot(*zip(*pts), "o-", color=c, label=f"seed {r['seed']} (eval.py {r['map50_heldout']:.3f})")
        ax_lr.plot(epochs, curve["learning_rate"], color=c)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss (sum / image)", title="loss")
    ax_map.set(xlabel="epoch", ylabel="val mAP@0.5", ylim=(0, 1), title="validation mAP@0.5")
    ax_map.axhline(0.9, color="grey", ls=":", lw=1)
    ax_lr.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title="learning rate")
    ax_lr.set_yscale("log")
    ax_loss.legend(fontsize=7)
    ax_map.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/tmp/bench_convergence", help="work folder (data, logs, models)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="shapes generator seeds")
    p.add_argument("--recipe", default="default", help="train.py --recipe (default adds no flag)")
    p.add_argument("--model", default="tiny",
                   help="train.py --model; only tiny starts from Darknet's COCO weights (the others from scratch: "
                        "no pretrained weights of them are reachable from this machine)")
    p.add_argument("--num", type=int, default=500, help="images generated a seed (20%% held out)")
    p.add_argument("--image-size", type=int, default=256, help="longer side of the generated images")
    p.add_argument("--radius", type=float, nargs=2, default=[0.04, 0.22], help="object radius range (x image size)")
    p.add_argument("--input-size", type=int, default=256, help="network input")
    p.add_argument("--epochs", type=int, nargs=2, default=[5, 25], help="train.py --epochs (stage 1, stage 2)")
    p.add_argument("--png", default=None, help="curves picture (default <out>/convergence.png)")
    p.add_argument("--reuse", action="store_true", help="skip data and training where the final model exists")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train.py flags (after the others)")
    args = p.parse_args()
    sys.path.insert(0, ROOT)
    os.makedirs(args.out, exist_ok=True)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = re.search(r"Model name:\s*(.*)", cpu)
    flags = sorted(set(re.findall(r"\b(avx512\w*|amx\w*|avx2)\b", cpu)))
    print(f"CPU: {model_name.group(1) if model_name else '?'}, {os.cpu_count()} cores, flags {' '.join(flags)}")
    weights = coco_tiny(args.out) if args.model in ("tiny", "yolov3-tiny") else None
    results = [one_seed(args, seed, weights) for seed in args.seeds]
    png = args.png or os.path.join(args.out, "convergence.png")
    start = "YOLOv3-tiny from COCO weights" if weights else f"{args.model} from scratch"
    plot(results, png, f"{start}, recipe {args.recipe}, shapes {args.num} images, "
                       f"{args.input_size}x{args.input_size}, --epochs {args.epochs[0]} {args.epochs[1]} "
                       f"{' '.join(args.extra)}")
    rows = [f"| {args.model} | {args.recipe} {' '.join(args.extra)} | {r['seed']} | {r['map50_heldout']:.3f} | "
            f"{max((v for v in r['curve']['val_map'] if np.isfinite(v)), default=math.nan):.3f} | "
            f"{r['train_seconds'] / 60:.1f} |" for r in results]
    summary = {"recipe": args.recipe, "cpu": model_name.group(1) if model_name else None, "cpu_flags": flags,
               "settings": vars(args), "results": results, "markdown_rows": rows}
    with open(os.path.join(args.out, "result.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    header = "| model | recipe, extra flags | seed | held-out mAP@0.5 (eval.py) | best val mAP | training minutes |"
    print("\n".join([header,
                     "|---|---|---|---|---|---|", *rows]))
    goal = 0.9 if weights else 0.8  # the issues' goals: tiny from COCO weights 0.9 (30 epochs), from scratch 0.8 (60)
    ok = all(r["map50_heldout"] >= goal for r in results)
    print(f"{'PASS' if ok else 'FAIL'}: every seed >= {goal} held-out mAP@0.5" if args.recipe == "default" else "")
    return 0 if ok or args.recipe != "default" else 1


if __name__ == "__main__":
    sys.exit(main())
