"""The fault server's MJPEG stream as a process of its own, for a camera in another network namespace:

    python -m cam_guard.testing.serve_mjpeg [--width 1280] [--height 720] [--fps 30] [--port 8090]

Prints the stream URL once it listens (on that namespace's 127.0.0.1) and serves until SIGINT/SIGTERM.
Frames are pre-encoded and repeated (`cycle_frames`), so serving costs next to nothing.
"""

import argparse

from cam_guard.common.child_process import stop_event_of_child
from cam_guard.testing.fault_injection import MjpegFaultServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cam_guard.testing.serve_mjpeg")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--cycle-frames", type=int, default=60)
    args = parser.parse_args(argv)
    stop = stop_event_of_child()
    server = MjpegFaultServer(args.width, args.height, args.fps, cycle_frames=args.cycle_frames)
    print(server.start(port=args.port), flush=True)
    try:
        stop.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
