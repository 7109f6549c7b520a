"""Training throughput: input pipeline vs training step, training vs the CPU's FLOP floor, and
bottleneck vs frozen epochs.

    python benchmarks/bench_training_throughput.py [--models tiny,yolov3] [--input-size 224] [--batch-size 8]

All numbers come from one run on one machine, as ratios where possible:

1. pipeline images/s: ``yolo3.training.pipeline.make_dataset`` (decode + keras-yolo3 augmentation + targets)
   iterated alone;
2. training images/s (everything trainable) fed by that pipeline, and fed by one cached batch
   (compute only): when the two agree and (1) is far above them, the pipeline is not what limits
   training;
3. forward FLOPs of the model (sum over convolutions of 2*H*W*k*k*Cin*Cout) and the
   forward+backward floor ``3 * forward FLOPs / peak`` per image, against the measured time; the
   peak is measured in the same run: float32 2048x2048 matrix products in TensorFlow (what this
   CPU's BLAS reaches; the developers' guide quotes about 180 GFLOP/s for the first machine);
4. epochs of frozen training (``freeze_body=2``: forward through the whole body each step)
   against epochs of bottleneck training on cached features (``yolo3.training.bottleneck``), same images,
   same batch size; ``--epochs`` epochs in one ``fit`` each, the fastest epoch after the first
   compared (``fit``'s own start-up, paid once per training run, left out); the cache's one-off
   cost is reported too;
5. ``--precisions``: training images/s of the same model built under each Keras dtype policy
   (``float32``, ``mixed_bfloat16``, ``mixed_float16``, as ``train.py --precision``), compute only
   (one cached batch), measured interleaved (round robin, ``--rounds`` rounds, best of each) so the
   ratio to float32 comes from one run. bfloat16 is fast only where the CPU has bfloat16 units
   (AVX-512 BF16, AMX); the CPU's model and flags are printed with the results.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)



def measure_peak_gflops(n: int = 2048, reps: int = 10) -> float:
    """float32 GFLOP/s of TensorFlow's matrix product on this CPU (best of 3 rounds)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))

    @tf.function
    def run(a, b):
        x = a
        for _ in range(reps):
            x = tf.matmul(x, b) * 1e-3
        return x

    run(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        run(a, b).numpy()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 * reps / best / 1e9


def timed_epochs(trainer, dataset, steps_per_epoch: int, epochs: int) -> list[float]:
    """Seconds of each epoch of one ``fit`` (the first includes tracing and pipeline start-up)."""
    import keras

    seconds: list[float] = []
    start = [0.0]
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: start.__setitem__(0, time.perf_counter()),
        on_epoch_end=lambda epoch, logs=None: seconds.append(time.perf_counter() - start[0]))
    trainer.fit(dataset, steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=0, shuffle=False,
                callbacks=[timer])
    return seconds


def default_anchors(kind: str, size: int):
    """COCO anchors scaled to ``size`` for the YOLOv3 kinds; None (the cfg's own) for yolov4 and yolov4-tiny."""
    from yolo3.modeling.architectures import TINY_ANCHORS, YOLOV3_ANCHORS

    if kind in ("tiny", "yolov3-tiny"):
        return TINY_ANCHORS * size / 416
    if kind.startswith("yolov3"):
        return YOLOV3_ANCHORS * size / 416
    return None


def conv_flops(kind: str, num_classes: int, anchors, size: int) -> float:
    """Forward FLOPs (multiply + add = 2) of the convolutions of ``kind`` at ``size`` x ``size``."""
    import keras

    from yolo3.modeling.factory import create_model

    model = create_model(kind, num_classes, anchors, input_shape=(size, size, 3), size=size)
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw, cin, _ = layer.kernel.shape
            total += 2.0 * h * w * kh * kw * cin * cout
    return total


def timed_fit(trainer, dataset, steps: int, epochs: int = 3) -> float:
    """Seconds per step of ``trainer.fit``: the fastest of ``epochs - 1`` epochs of ``steps`` steps
    after a first one (tracing and the pipeline's start-up are left out)."""
    return min(timed_epochs(trainer, dataset, steps, epochs)[1:]) / steps


def cpu_description() -> dict:
    """The CPU's model name and the vector/matrix flags that decide 16-bit speed (Linux lscpu)."""
    import re
    import subprocess

    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    model = re.search(r"Model name:\s*(.*)", text)
    flags = sorted(set(re.findall(r"\b(avx2|avx512f|avx512_bf16|avx512_fp16|avx512_vnni|amx_bf16|amx_int8|amx_tile)\b",
                                  text)))
    return {"cpu_model": model.group(1).strip() if model else None, "cpu_flags": flags}


def bench_precisions(kind: str, args, clean: str) -> dict:
    """Training images/s at each precision, compute only, interleaved rounds; ratios to float32."""

    from yolo3.modeling.factory import create_model
    from yolo3.training.pipeline import make_dataset
    from yolo3.training.precision import make_optimizer, precision_policy
    from yolo3.training.targets import target_spec_from_model
    from yolo3.training.trainer import YoloTrainer

    size, batch = args.input_size, args.batch_size
    anchors = default_anchors(kind, size)
    steps = args.steps if "tiny" in kind else max(3, args.steps // 4)
    trainers, data = {}, None
    for precision in args.precisions:
        with precision_policy(precision):
            model = create_model(kind, 3, anchors, size=size)
        trainer = YoloTrainer(model)
        trainer.compile(optimizer=make_optimizer(1e-4, precision))
        if data is None:
            spec = target_spec_from_model(model)
            data = make_dataset(clean, spec, (size, size), batch, augment=True, seed=2).take(1).cache().repeat()
        timed_epochs(trainer, data, 2, 1)  # trace once
        trainers[precision] = trainer
    best = {p: float("inf") for p in trainers}
    for _ in range(args.rounds):
        for precision, trainer in trainers.items():
            best[precision] = min(best[precision], min(timed_epochs(trainer, data, steps, 1)) / steps)
    out = {f"{p}_images_per_s": batch / t for p, t in best.items()}
    if "float32" in best:
        out.update({f"{p}_over_float32": best["float32"] / t for p, t in best.items() if p != "float32"})
    return out


def bench_model(kind: str, args, data_paths: dict, work: str) -> dict:
    import keras

    from yolo3.datasets.cleaning import prepare_annotations
    from yolo3.modeling.factory import create_model
    from yolo3.training.bottleneck import BottleneckTrainer, cache_dataset, split_at_head_convs, write_feature_cache
    from yolo3.training.freezing import freeze_body
    from yolo3.training.pipeline import make_dataset
    from yolo3.training.targets import target_spec_from_model
    from yolo3.training.trainer import YoloTrainer

    size, batch = args.input_size, args.batch_size
    anchors = default_anchors(kind, size)
    steps = args.steps if "tiny" in kind else max(3, args.steps // 4)
    clean = os.path.join(work, "clean.txt")
    prepare_annotations(data_paths["annotation"], clean, num_classes=3, progress=False)
    model = create_model(kind, 3, anchors, size=size)
    spec = target_spec_from_model(model)
    out = {"model": kind, "input_size": size, "batch_size": batch}

    # 1. the input pipeline alone
    ds = make_dataset(clean, spec, (size, size), batch, augment=True, seed=0)
    it = iter(ds)
    for _ in range(3):
        next(it)
    n = max(10, steps)
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    out["pipeline_images_per_s"] = n * batch / (time.perf_counter() - t0)

    # 2. full training step fed by the pipeline vs by one cached batch
    freeze_body(model, 0)
    trainer = YoloTrainer(model)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
    s_pipe = timed_fit(trainer, make_dataset(clean, spec, (size, size), batch, augment=True, seed=1), steps)
    cached = make_dataset(clean, spec, (size, size), batch, augment=True, seed=2).take(1).cache().repeat()
    s_cached = timed_fit(trainer, cached, steps)
    out["train_steps_per_s_pipeline"] = 1.0 / s_pipe
    out["train_steps_per_s_cached_batch"] = 1.0 / s_cached
    out["train_images_per_s"] = batch / s_pipe
    out["pipeline_over_training_images"] = out["pipeline_images_per_s"] / out["train_images_per_s"]

    # 3. FLOP floor
    fwd = conv_flops(kind, 3, anchors, size)
    out["forward_gflop_per_image"] = fwd / 1e9
    floor_s = 3.0 * fwd / (args.peak_gflops * 1e9)
    out["fwd_bwd_floor_images_per_s"] = 1.0 / floor_s
    out["fraction_of_floor"] = out["train_images_per_s"] / out["fwd_bwd_floor_images_per_s"]

    # 4. frozen epoch vs bottleneck epoch, same images and batch size
    n_images = sum(1 for _ in open(clean))
    epoch_steps = max(1, n_images // batch)
    freeze_body(model, 2)
    frozen = YoloTrainer(model)
    frozen.compile(optimizer=keras.optimizers.Adam(1e-3))
    frozen_ds = make_dataset(clean, spec, (size, size), batch, augment=False, seed=3)
    frozen_epochs = timed_epochs(frozen, frozen_ds, epoch_steps, args.epochs)
    feature_model, head_model = split_at_head_convs(model)
    cache_dir = os.path.join(work, f"cache_{kind}")
    t0 = time.perf_counter()
    write_feature_cache(feature_model, clean, (size, size), cache_dir, batch_size=batch, progress=False)
    cache_s = time.perf_counter() - t0
    bn = BottleneckTrainer(head_model, (size, size))
    bn.compile(optimizer=keras.optimizers.Adam(1e-3))
    bn_epochs = timed_epochs(bn, cache_dataset(cache_dir, spec, batch), epoch_steps, args.epochs)
    frozen_epoch, bn_epoch = min(frozen_epochs[1:]), min(bn_epochs[1:])
    cache_bytes = sum(os.path.getsize(os.path.join(cache_dir, f)) for f in os.listdir(cache_dir))
    out.update({"epoch_images": epoch_steps * batch, "frozen_epochs_s": [round(t, 3) for t in frozen_epochs],
                "bottleneck_epochs_s": [round(t, 3) for t in bn_epochs],
                "frozen_epoch_s": frozen_epoch, "bottleneck_epoch_s": bn_epoch,
                "bottleneck_speedup": frozen_epoch / bn_epoch, "bottleneck_cache_s": cache_s,
                "bottleneck_cache_mb": cache_bytes / 2**20})
    if args.precisions:
        out.update(bench_precisions(kind, args, clean))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="tiny", help="comma-separated: tiny, yolov3, yolov3-spp, yolov4-tiny, yolov4")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=12, help="timed training steps (yolov3: a quarter)")
    p.add_argument("--images", type=int, default=96, help="generated images (the epoch of part 4)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per fit in part 4 (the first is not compared)")
    p.add_argument("--precisions", default="float32,mixed_bfloat16",
                   help="comma-separated dtype policies for part 5 ('' skips it)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of part 5 (best of each)")
    p.add_argument("--only-precisions", action="store_true", help="run part 5 alone")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    args.precisions = [v.strip() for v in args.precisions.split(",") if v.strip()]
    if args.epochs < 2:
        p.error("--epochs must be at least 2")
    args.peak_gflops = measure_peak_gflops()
    from yolo3.datasets.shapes import generate_shapes_dataset

    work = tempfile.mkdtemp(prefix="bench_train_")
    try:
        data = generate_shapes_dataset(os.path.join(work, "data"), args.images, size=320, seed=0, progress=False)
        kinds = [kind.strip() for kind in args.models.split(",") if kind.strip()]
        if args.only_precisions:
            from yolo3.datasets.cleaning import prepare_annotations

            clean = os.path.join(work, "clean.txt")
            prepare_annotations(data["annotation"], clean, num_classes=3, progress=False)
            results = [{"model": k, "input_size": args.input_size, "batch_size": args.batch_size,
                        **bench_precisions(k, args, clean)} for k in kinds]
        else:
            results = [bench_model(kind, args, data, work) for kind in kinds]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    report = {"results": results, **cpu_description(), "cpu_count": os.cpu_count(),
              "loadavg_after": [round(v, 2) for v in load], "peak_gflops_measured": round(args.peak_gflops, 1)}
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
