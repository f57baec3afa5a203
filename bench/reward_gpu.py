"""Reward classifier latency on the CPU and the GPU, through cam_guard's lerobot backend.

LeRobot's reward Classifier at the size HIL-SERL trains (a resnet10-shaped encoder, 128x128 input, 1 and 2
cameras by default), built offline with random weights (the hub is out of reach). Each predict() is what reward_node
does per frame set: crop/resize/normalise on the CPU, copy to the device, forward, read the probability
(which waits for the device). Each row's ratio is against the CPU row (all cores) of the same run, and
"vs CPU" is how far its probability for the same frames lies from that row's (the GPU must agree).
Needs torch, transformers and lerobot 0.4.4; the GPU rows appear where CUDA is available.
"""

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
from _common import machine, table

from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.reward.backends import LeRobotClassifier, Preprocessing
from cam_guard.testing.lerobot_checkpoint import RESNET10, reward_classifier_checkpoint


def timed_ms(call: Callable[[], object], count: int) -> tuple[np.ndarray, float]:
    """Each call's wall time in ms, and the CPU time (all threads) one call costs on average."""
    took = np.empty(count)
    cpu_start = time.process_time()
    for i in range(count):
        start = time.perf_counter()
        call()
        took[i] = time.perf_counter() - start
    return took * 1000, (time.process_time() - cpu_start) * 1000 / count


def preprocess(classifier: LeRobotClassifier, frames: list[np.ndarray]) -> None:
    for camera, frame in enumerate(frames):
        classifier.preprocessing.to_tensor(frame, camera)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="timed predictions per row")
    parser.add_argument("--cameras", default="1,2", help="camera counts, one model each (4: an ALOHA-style cell)")
    args = parser.parse_args()
    import torch

    logging.getLogger().setLevel(logging.ERROR)  # LeRobot warns about every unused BatchNorm counter

    cores = os.cpu_count() or 1
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"{machine()}; torch {torch.__version__}; GPU: {gpu}")
    runs = [("cpu", cores), ("cpu", 2)] + ([("cuda", cores)] if torch.cuda.is_available() else [])
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for cameras in (int(n) for n in args.cameras.split(",")):
            checkpoint = reward_classifier_checkpoint(Path(tmp) / f"cameras{cameras}", cameras, RESNET10)
            frames = [synthetic_frame(i, 640, 480) for i in range(cameras)]
            baseline = cpu_probability = None
            for device, threads in runs:
                classifier = LeRobotClassifier(str(checkpoint), Preprocessing(resize=(128, 128)), device, threads)
                for _ in range(20):  # warm-up: CUDA context, cuDNN algorithm choice, allocator
                    classifier.predict(frames)
                took, cpu_ms = timed_ms(partial(classifier.predict, frames), args.count)
                p50, p95 = np.percentile(took, [50, 95])
                probability = classifier.predict(frames)
                baseline = baseline or p50
                cpu_probability = probability if cpu_probability is None else cpu_probability
                preprocessing_ms = float(np.median(timed_ms(partial(preprocess, classifier, frames), args.count)[0]))
                rows.append([cameras, device, threads, preprocessing_ms, p50, p95, f"{p50 / baseline:.2f}x", cpu_ms,
                             f"{abs(probability - cpu_probability):.1e}"])
    print(table(["cameras", "device", "torch CPU threads", "of which preprocessing p50 ms", "predict p50 ms",
                 "p95 ms", "p50 vs CPU, all cores", "CPU ms per predict", "probability vs CPU"],
                rows))


if __name__ == "__main__":
    main()
