"""An emulated USB (UVC) camera for tests and benches: OpenCV's real V4L2 backend, ustreamer or any V4L2
program opens it at /dev/videoN in a private mount namespace, through an LD_PRELOAD shim."""
