"""Mutation check: plant curated bugs one at a time in a throwaway copy and see the tests catch each.

    nice -n 19 .venv/bin/python tests/mutants.py            # all (make mutants); about an hour on 2 cores
    .venv/bin/python tests/mutants.py --only loss mosaic    # names or categories containing these words
    .venv/bin/python tests/mutants.py --list

The repository (without .git, .venv and caches) is copied to a temporary folder beside a link to
../shared, so the tests find the reference data as in a checkout. Each mutant replaces text that
must occur exactly once in one file (a mutant whose text is gone is reported "stale": update the
list), runs only the test files that should notice it (``-x -q -m ""``: slow tests included, since
CI runs them too and tests move between the two sets as the default suite's time budget demands)
and restores the file. Killed: pytest failed. Survived: the tests passed with the bug, a missing
test. Exit 1 if any mutant survived, went stale or errored. A developer tool, not part of
``make test``; the last run's table is in docs/testing.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    category: str
    path: str                       # file under the repository root
    edits: tuple[tuple[str, str], ...]  # (old text, occurring exactly once; new text)
    tests: tuple[str, ...]          # pytest arguments: files, node ids, -k expressions


def _m(name, category, path, old, new, *tests, more=()):
    return Mutant(name, category, path, ((old, new), *more), tuple(tests))


MUTANTS = [
    # -- training schedule ---------------------------------------------------------------------
    _m("stage 1 freezes nothing", "training schedule", "yolo3/training/freezing.py",
       "layer.trainable = id(layer) not in frozen", "layer.trainable = True",
       "tests/test_training.py", "tests/test_training_schedule.py", "-k", "freeze"),
    _m("PreciseBN never applied", "training schedule", "yolo3/training/run.py",
       "if self.config.evaluation.precise_bn > 0 and self.replicas == 1:", "if False:",
       "tests/test_learning.py", "-k", "precise_bn"),
    _m("validation mAP always 0", "training schedule", "yolo3/training/map_callback.py",
       "return float(result.mean_ap)", "return 0.0",
       "tests/test_learning.py", "-k", "validation_map"),
    _m("stage 2 without ReduceLROnPlateau", "training schedule", "yolo3/training/run.py",
       "if constant:  # a LearningRateSchedule", "if False:  # a LearningRateSchedule",
       "tests/test_training_schedule.py", "-k", "stage_2"),
    _m("stage 2 without EarlyStopping", "training schedule", "yolo3/training/run.py",
       "        if patience > 0:\n            schedule.append(keras.callbacks.EarlyStopping",
       "        if False:\n            schedule.append(keras.callbacks.EarlyStopping",
       "tests/test_training_schedule.py", "-k", "stage_2"),
    # -- loss ------------------------------------------------------------------------------------
    _m("CIoU is plain IoU", "loss", "yolo3/core/boxes.py",
       "return iou - centre / tf.maximum(diag, _EPS) - alpha * v", "return iou",
       "tests/test_loss.py"),
    _m("loss uses IoU for CIoU", "loss", "yolo3/training/loss.py",
       "ciou = ciou_cxcywh(pred_box, true_xywh)[..., None]",
       "ciou = box_iou_cxcywh(pred_box[..., None, :], true_xywh[..., None, :])[..., 0]",
       "tests/test_loss.py"),
    _m("label smoothing eps instead of eps/2", "loss", "yolo3/training/loss.py",
       "true_cls * (1.0 - label_smoothing) + 0.5 * label_smoothing",
       "true_cls * (1.0 - label_smoothing) + label_smoothing",
       "tests/test_loss.py"),
    _m("ignore mask inverted", "loss (ignore mask)", "yolo3/training/loss.py",
       "ignore = tf.cast(best < thresh, tf.float32)", "ignore = tf.cast(best > thresh, tf.float32)",
       "tests/test_loss.py"),
    _m("ignore mask never spares", "loss (ignore mask)", "yolo3/training/loss.py",
       "ignore = tf.cast(best < thresh, tf.float32)", "ignore = tf.cast(best < 2.0, tf.float32)",
       "tests/test_loss.py"),
    # -- target assignment -------------------------------------------------------------------------
    _m("worst anchor assigned", "target assignment", "yolo3/training/targets.py",
       "best = tf.argmax(wh_iou(wh, anchors), axis=1, output_type=tf.int32)",
       "best = tf.argmin(wh_iou(wh, anchors), axis=1, output_type=tf.int32)",
       "tests/test_targets.py", "tests/test_loss.py"),
    _m("grid cell rounded, not floored", "target assignment", "yolo3/training/targets.py",
       "i = tf.clip_by_value(tf.cast(tf.floor(sel_xy[:, 0] * gw), tf.int32), 0, gw - 1)",
       "i = tf.clip_by_value(tf.cast(tf.round(sel_xy[:, 0] * gw), tf.int32), 0, gw - 1)",
       "tests/test_targets.py"),
    # -- Darknet (YOLOv4) loss and targets --------------------------------------------------------
    _m("iou_thresh adds no extra positives", "Darknet loss", "yolo3/training/targets.py",
       "if iou_thresh < 1.0:  # Darknet's iou_thresh", "if False:  # Darknet's iou_thresh",
       "tests/test_darknet_loss.py"),
    _m("box delta without max_delta clipping", "Darknet loss", "yolo3/training/loss.py",
       "delta = tf.clip_by_value(delta, -float(head.max_delta), float(head.max_delta))", "pass",
       "tests/test_darknet_loss.py"),
    _m("w, h deltas without exp(t)", "Darknet loss", "yolo3/training/loss.py",
       "d[..., 2:4] * tf.exp(twh)], axis=-1)", "d[..., 2:4]], axis=-1)",
       "tests/test_darknet_loss.py"),
    _m("ignore mask without the class-probability rule", "Darknet loss", "yolo3/training/loss.py",
       "punish = tf.stop_gradient(tf.logical_or(punish > 0, no_class))", "punish = tf.stop_gradient(punish > 0)",
       "tests/test_darknet_loss.py"),
    _m("unimplemented [yolo] keys accepted for training", "Darknet loss", "yolo3/modeling/training_keys.py",
       "        raise sec.error(f\"'{key}={value}' changes the loss",
       "        continue\n        raise sec.error(f\"'{key}={value}' changes the loss",
       "tests/test_train_cfg_models.py"),
    # -- augmentation ------------------------------------------------------------------------------
    _m("mosaic ignores the crop offset", "augmentation", "yolo3/training/augment.py",
       "shift_x = tf.cast(qx[k] - ox, tf.float32)", "shift_x = tf.cast(qx[k], tf.float32)",
       "tests/test_data.py", "-k", "mosaic",
       more=(("shift_y = tf.cast(qy[k] - oy, tf.float32)", "shift_y = tf.cast(qy[k], tf.float32)"),)),
    _m("mosaic shifts no box", "augmentation", "yolo3/training/augment.py",
       "shift_x = tf.cast(qx[k] - ox, tf.float32)", "shift_x = tf.constant(0.0)",
       "tests/test_data.py", "-k", "mosaic",
       more=(("shift_y = tf.cast(qy[k] - oy, tf.float32)", "shift_y = tf.constant(0.0)"),)),
    _m("flip moves the picture, not the boxes", "augmentation", "yolo3/training/augment.py",
       "x1, x2 = tf.where(do_flip, out_w - x2, x1), tf.where(do_flip, out_w - x1, x2)", "pass",
       "tests/test_data.py", "-k", "augment"),
    # -- letterbox, decoding, NMS ------------------------------------------------------------------
    _m("letterbox pasted at the corner", "letterbox", "yolo3/ops/letterbox.py",
       "    left = (net_w - new_w) // 2", "    left = 0 * net_w",
       "tests/test_letterbox.py"),
    _m("boxes back without the letterbox offset", "letterbox", "yolo3/ops/letterbox.py",
       "cx = (cx - (net_w - new_w) / 2.0 / net_w)", "cx = (cx - 0.0 / net_w)",
       "tests/test_letterbox.py"),
    _m("decoded centres half a cell off", "decoding", "yolo3/ops/decode.py",
       "xy = (grid + xy) / tf.cast", "xy = (grid + xy + 0.5) / tf.cast",
       "tests/test_decode.py"),
    _m("NMS threshold ignored", "NMS", "yolo3/ops/decode.py",
       "iou_threshold=iou_threshold, score_threshold=score_threshold,",
       "iou_threshold=1.0, score_threshold=score_threshold,",
       "tests/test_decode.py"),
    # -- export accuracy -------------------------------------------------------------------------
    _m("SavedModel boxes +0.9 px, scores x0.992", "export", "yolo3/export/saved_model.py",
       'return {"boxes": tf.identity(result.boxes, name="boxes"),\n'
       '                "scores": tf.identity(result.scores, name="scores"),',
       'return {"boxes": tf.identity(result.boxes + 0.9, name="boxes"),\n'
       '                "scores": tf.identity(result.scores * 0.992, name="scores"),',
       "tests/test_export.py", "-k", "saved_model_runs"),
    _m("TFLite boxes x1.002 (0.8 px), scores x0.992", "export", "yolo3/backends/tflite.py",
       'boxes.append(out["boxes"])\n            scores.append(out["scores"])',
       'boxes.append(out["boxes"] * 1.002)\n            scores.append(out["scores"] * 0.992)',
       "tests/test_export.py", "-k", "tflite_float32"),
    # -- detection ---------------------------------------------------------------------------------
    _m("video frames fed as BGR", "detection", "yolo3/inference/video.py",
       "rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)", "rgb = frame.copy()",
       "tests/test_yolo_video.py", "-k", "rgb"),
    _m("video frames converted into the reused decode buffer", "detection", "yolo3/inference/video.py",
       "rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)", "rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)",
       "tests/test_yolo_video.py", "-k", "own_and_written"),
    _m("video written in RGB", "detection", "yolo3/inference/video.py",
       "drawn = cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR, dst=drawn)", "drawn = drawn",
       "tests/test_yolo_video.py", "-k", "own_and_written"),
    _m("BatchNorm folding drops the shift", "detection", "yolo3/modeling/batchnorm.py",
       "((bias - mean) * scale + beta).astype(np.float32)", "(bias * scale).astype(np.float32)",
       "tests/test_batchnorm_folding.py"),
    _m("boxes 0.5 px right", "detection", "yolo3/ops/letterbox.py",
       "return tf.stack([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], axis=-1)",
       "return tf.stack([cx - w / 2.0 + 0.5, cy - h / 2.0, cx + w / 2.0 + 0.5, cy + h / 2.0], axis=-1)",
       "tests/test_yolo_video.py", "-k", "darknets"),
    # -- converter ---------------------------------------------------------------------------------
    _m("grouped convolution built ungrouped", "converter", "yolo3/modeling/builder.py",
       "groups=groups, use_bias=not bn", "groups=1, use_bias=not bn",
       "tests/test_parity.py", "-k", "grouped"),
    _m("relu built as leaky", "converter", "yolo3/modeling/builder.py",
       "return keras.layers.ReLU(name=name)", "return keras.layers.LeakyReLU(negative_slope=0.1, name=name)",
       "tests/test_parity.py", "-k", "grouped"),
    _m("logistic built as linear", "converter", "yolo3/modeling/builder.py",
       'return keras.layers.Activation("sigmoid", name=name)', 'return keras.layers.Identity(name=name)',
       "tests/test_parity.py", "-k", "grouped"),
    _m("swish built as mish", "converter", "yolo3/modeling/builder.py",
       'return keras.layers.Activation("silu", name=name)', 'return keras.layers.Activation("mish", name=name)',
       "tests/test_parity.py", "-k", "grouped"),
    _m("dropout scales at inference", "converter", "yolo3/modeling/builder.py",
       'keras.layers.Dropout(sec.get_float("probability", 0.5), name=f"dropout_{i}")(prev)',
       'keras.layers.Rescaling(1 - sec.get_float("probability", 0.5), name=f"dropout_{i}")(prev)',
       "tests/test_parity.py", "-k", "grouped"),
    # -- tracking ----------------------------------------------------------------------------------
    _m("association keeps pairs above the cost bound", "tracking", "yolo3/tracking/association.py",
       "ok = bounded[rows, cols] <= max_cost", "ok = bounded[rows, cols] >= 0",
       "tests/test_tracking.py"),
    _m("association cost ignores IoU", "tracking", "yolo3/tracking/base.py",
       "cost = 1.0 - iou", "cost = 0.0 * iou",
       "tests/test_tracking.py"),
    # -- skips ---------------------------------------------------------------------------------------
    _m("missing weights skip under CI", "skips", "tests/conftest.py",
       "    if in_ci():\n        pytest.fail(", "    if False:\n        pytest.fail(",
       "tests/test_ci_skips.py"),
    _m("CI without the slow tests", "skips", ".ci/run", "make test-slow\n", "\n", "tests/test_ci_skips.py"),
]


def _copy_tree(dest: Path) -> Path:
    """The checkout (no .git, .venv, caches) under ``dest/work``, with ``dest/shared`` linking ../shared."""
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "logs",
                                    "out", "*.keras", "*.weights", "*.onnx", "*.tflite")
    work = dest / "work"
    shutil.copytree(ROOT, work, ignore=ignore, symlinks=True)
    shared = ROOT.parent / "shared"
    if shared.exists():
        os.symlink(shared, dest / "shared")
    return work


def run_mutant(mutant: Mutant, work: Path, timeout: float) -> tuple[str, float, str]:
    """(outcome, seconds, last output line): outcome killed, survived, stale or error."""
    path = work / mutant.path
    original = path.read_text()
    text = original
    for old, new in mutant.edits:
        if text.count(old) != 1:
            return "stale", 0.0, f"{old[:50]!r} occurs {text.count(old)} times in {mutant.path}"
        text = text.replace(old, new)
    path.write_text(text)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "", *mutant.tests]
    env = dict(os.environ, PYTHONPATH=str(work), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("CI", None)  # a missing download must skip (and so not count as killed), not fail
    start = time.time()
    try:
        proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in lines if line.startswith("FAILED ")]
        last = "; ".join(failed) or (lines[-1] if lines else proc.stderr.strip()[-200:])
        if proc.returncode == 1:
            outcome = "killed"
        elif proc.returncode == 0:
            outcome = "survived"
        else:
            outcome = "error"
    except subprocess.TimeoutExpired:
        outcome, last = "error", f"timed out after {timeout:.0f} s"
    finally:
        path.write_text(original)
    return outcome, time.time() - start, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=None, metavar="WORD",
                        help="run the mutants whose name or category contains one of these words")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds a mutant's tests may take")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only
              or any(w.lower() in f"{m.name} {m.category}".lower() for w in args.only)]
    if args.list or not chosen:
        for m in MUTANTS:
            print(f"{m.category:20} {m.name:45} {m.path}")
        return 0 if args.list else 2
    results = []
    with tempfile.TemporaryDirectory(prefix="yolo3-mutants-") as tmp:
        work = _copy_tree(Path(tmp))
        for mutant in chosen:
            outcome, seconds, last = run_mutant(mutant, work, args.timeout)
            results.append((mutant, outcome, seconds))
            print(f"{outcome:8} {seconds:6.0f} s  {mutant.category}: {mutant.name}  [{last}]", flush=True)
    print("\n| category | deliberate bug | file | tests run | result | s |\n|---|---|---|---|---|---|")
    for mutant, outcome, seconds in results:
        tests = " ".join(mutant.tests)
        print(f"| {mutant.category} | {mutant.name} | `{mutant.path}` | `{tests}` | {outcome} | {seconds:.0f} |")
    bad = [m.name for m, outcome, _ in results if outcome != "killed"]
    print(f"\n{len(results) - len(bad)} of {len(results)} killed" + (f"; not killed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
