"""A subscriber process that logs every message it gets, for measurements on the far side of a link:

    python -m cam_guard.testing.topic_recorder OUT.jsonl [--reliable] [--callback-ms MS] TYPE:TOPIC ...

TYPE is Image, CompressedImage, Vector3Stamped, String or DiagnosticArray. One JSON line per message:
topic, arrival time (`time.time()`), header stamp in ns (when the message has a header), payload
bytes; for DiagnosticArray the key/values of each cam_guard status; for String the text. Images are
read best effort, depth 1, as `ros2 topic hz` and rqt do (`--reliable`: reliable, depth 1), and
taken serialized (the same DDS reader; the stamp is read from the CDR bytes), so that on a machine
shared by both hosts the recorder's own CPU barely counts; `--callback-ms` makes each image
callback take that long, like a slow Python consumer.
`read_records` and `window_stats` turn the file into rates and latencies.
"""

import argparse
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STATE_TOPIC_TYPES = ("String",)


def read_records(path: str | Path) -> list[dict]:
    """Every complete line written so far (the recorder may still be writing)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the line being written
    return records


@dataclass(frozen=True)
class WindowStats:
    count: int
    fps: float
    latency_ms_p50: float
    latency_ms_p95: float
    payload_mb: float


def window_stats(records: list[dict], topic: str, start: float, end: float) -> WindowStats:
    """Messages of `topic` that arrived in [start, end): rate, latency (arrival − header stamp)."""
    inside = [r for r in records if r["topic"] == topic and start <= r["t"] < end]
    latencies = [(r["t"] - r["stamp"] / 1e9) * 1000 for r in inside if r.get("stamp")]
    p50, p95 = (float(np.percentile(latencies, q)) for q in (50, 95)) if latencies else (float("nan"),) * 2
    return WindowStats(len(inside), len(inside) / max(1e-9, end - start), p50, p95,
                       sum(r.get("bytes", 0) for r in inside) / 1e6)


def _serialized_image_line(topic: str, cdr: bytes) -> dict:
    # CDR: 4 bytes of encapsulation header, then header.stamp (int32 sec, uint32 nanosec) first.
    sec, nanosec = struct.unpack_from("<iI", cdr, 4)
    return {"topic": topic, "t": time.time(), "stamp": sec * 1_000_000_000 + nanosec, "bytes": len(cdr)}


def _record_line(topic: str, msg: object) -> dict:
    from cam_guard.ros.image_conversion import stamp_to_ns

    line: dict = {"topic": topic, "t": time.time()}
    header = getattr(msg, "header", None)
    if header is not None:
        line["stamp"] = stamp_to_ns(header.stamp)
    data = getattr(msg, "data", None)
    if isinstance(data, str):
        line["text"] = data
    statuses = getattr(msg, "status", None)
    if statuses is not None:
        line["status"] = {s.name: {"level": int.from_bytes(s.level, "little") if isinstance(s.level, bytes)
                                   else int(s.level), "message": s.message,
                                   **{kv.key: kv.value for kv in s.values}}
                          for s in statuses if s.name.startswith("cam_guard")}
    return line


def main(argv: list[str] | None = None) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Vector3Stamped
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import String

    from cam_guard.common.child_process import die_with_parent
    from cam_guard.ros.runtime import prepare_ros_process, spin_until_shutdown
    from cam_guard.ros.transport import image_qos, latched_qos, newest_only_subscription_qos

    types = {"Image": Image, "CompressedImage": CompressedImage, "Vector3Stamped": Vector3Stamped,
             "String": String, "DiagnosticArray": DiagnosticArray}
    parser = argparse.ArgumentParser(prog="cam_guard.testing.topic_recorder")
    parser.add_argument("out")
    parser.add_argument("topics", nargs="+", help="TYPE:TOPIC")
    parser.add_argument("--reliable", action="store_true", help="images reliable, depth 1 (default best effort)")
    parser.add_argument("--callback-ms", type=float, default=0.0, help="time each image callback takes")
    args = parser.parse_args(argv)
    die_with_parent()
    prepare_ros_process()
    rclpy.init()
    node = rclpy.create_node(f"recorder_{Path(args.out).stem.replace('-', '_')}")
    out = open(args.out, "a", buffering=1)  # noqa: SIM115 - line-buffered for the whole run, closed below

    def on_image(topic: str, cdr: bytes) -> None:
        if args.callback_ms > 0:
            time.sleep(args.callback_ms / 1000)
        out.write(json.dumps(_serialized_image_line(topic, cdr)) + "\n")

    def on_message(topic: str, msg: object) -> None:
        out.write(json.dumps(_record_line(topic, msg)) + "\n")

    for spec in args.topics:
        type_name, topic = spec.split(":", 1)
        if type_name in ("Image", "CompressedImage"):
            qos = image_qos("reliable") if args.reliable else newest_only_subscription_qos()
            node.create_subscription(types[type_name], topic, lambda cdr, t=topic: on_image(t, cdr), qos, raw=True)
        else:
            qos = latched_qos() if type_name in STATE_TOPIC_TYPES else 10
            node.create_subscription(types[type_name], topic, lambda msg, t=topic: on_message(t, msg), qos)
    try:
        spin_until_shutdown(node)
    finally:
        out.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
