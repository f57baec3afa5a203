"""Compile uvc_shim.c with the system's C compiler, once per source version."""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("uvc_shim.c")


class ShimBuildError(RuntimeError):
    pass


def build_shim(compiler: str = "gcc") -> Path:
    """Path of the compiled LD_PRELOAD library, cached in the temp dir under the source's hash."""
    cc = shutil.which(compiler)
    if cc is None:
        raise ShimBuildError(f"no C compiler '{compiler}' on PATH: the emulated camera needs one")
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"cam_guard-uvc-shim-{digest}" / "uvc_shim.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"uvc_shim.{os.getpid()}.so")  # concurrent builds each write their own, then rename
    cmd = [cc, "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", str(partial), str(SOURCE),
           "-ldl", "-lpthread"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ShimBuildError(f"{' '.join(cmd)} failed:\n{result.stderr}")
    os.replace(partial, out)
    return out
