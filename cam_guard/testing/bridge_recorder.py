"""What a LeRobot trainer gets from the bridge, logged like topic_recorder does, for tests and benchmarks:

    python -m cam_guard.testing.bridge_recorder OUT.jsonl --topic /image_raw [--transport compressed]
                                                [--state-topic /camera_state] [--reward-topic /reward/stamped]

Runs a `BridgeClient` (it starts the helper, as the LeRobot camera does) and writes one JSON line per
frame it reads (topic "bridge/frame": arrival time, capture stamp, size) and per change of the state
the bridge reports (topic "bridge/state": text). Runs until SIGINT/SIGTERM.
"""

import argparse
import json
import time

from cam_guard.bridge.client import BridgeClient
from cam_guard.common.child_process import stop_event_of_child


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cam_guard.testing.bridge_recorder")
    parser.add_argument("out")
    parser.add_argument("--topic", default="/image_raw")
    parser.add_argument("--transport", default="raw")
    parser.add_argument("--state-topic", default="/camera_state")
    parser.add_argument("--reward-topic", default="")
    parser.add_argument("--max-width", type=int, default=1920)
    parser.add_argument("--max-height", type=int, default=1080)
    args = parser.parse_args(argv)
    stop = stop_event_of_child()
    client = BridgeClient(args.topic, "rgb", args.state_topic, args.reward_topic, args.max_width, args.max_height,
                          args.transport)
    client.start()
    seq, state = 0, None
    with open(args.out, "a", buffering=1) as out:
        try:
            while not stop.is_set():
                frame = client.wait_fresh(seq, 0.05, max_age_s=60.0)
                now = time.time()
                if frame is not None:
                    seq = frame.seq
                    out.write(json.dumps({"topic": "bridge/frame", "t": now, "stamp": frame.stamp_ns,
                                          "bytes": frame.image.nbytes}) + "\n")
                current = client.status().state
                if current != state:
                    state = current
                    out.write(json.dumps({"topic": "bridge/state", "t": now, "text": state}) + "\n")
        finally:
            client.stop()


if __name__ == "__main__":
    main()
