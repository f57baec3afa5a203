"""The LeRobot release this plugin is written and tested against, checked before anything uses it.

`pip install torch==2.13.0 lerobot` resolves to lerobot 0.3.2 (0.4.4 pins torch<2.11), which has
neither lerobot.utils.errors nor register_third_party_plugins nor lerobot.rl: without this check
the plugin would fail with an ImportError deep inside its own imports.
"""

import importlib.metadata
import importlib.util

SUPPORTED_LEROBOT = "0.4.4"
INSTALL = f"pip install 'lerobot[transformers-dep]=={SUPPORTED_LEROBOT}'"
_NEEDED = ("lerobot.cameras.camera", "lerobot.utils.errors", "lerobot.utils.import_utils", "lerobot.rl")


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def check_lerobot() -> None:
    """ImportError with one line naming the fix unless the installed lerobot has what the plugin uses."""
    try:
        installed = f"lerobot {importlib.metadata.version('lerobot')} is installed"
    except importlib.metadata.PackageNotFoundError:
        installed = "lerobot is not installed"
    missing = [module for module in _NEEDED if not _exists(module)]
    if not missing:
        from lerobot.utils import import_utils

        missing = [] if hasattr(import_utils, "register_third_party_plugins") else ["register_third_party_plugins"]
    if missing:
        raise ImportError(f"lerobot_camera_cam_guard needs lerobot {SUPPORTED_LEROBOT} (Python >= 3.10), but "
                          f"{installed} and lacks {', '.join(missing)}: {INSTALL}")
