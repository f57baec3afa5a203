from glob import glob

from setuptools import find_packages, setup

PACKAGE = "cam_guard"

# The node executables: bin/<name> scripts, installed to the venv's bin by pip and to
# lib/cam_guard/<name> by colcon (setup.cfg), which is where launch_ros looks for them.
EXECUTABLES = {
    "camera_node": "cam_guard.camera_node:main",
    "reward_node": "cam_guard.reward_node:main",
    "preview_node": "cam_guard.preview_node:main",
    "hilserl_graph": "cam_guard.tools.graph_launcher:main",
    "cam_guard_hz": "cam_guard.tools.topic_hz:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={f"{PACKAGE}.ros": ["fastdds_shm_profile.xml"], f"{PACKAGE}.testing.uvc": ["uvc_shim.c"],
                  f"{PACKAGE}.preview": ["web_page.html"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    # simplejpeg is optional at run time (cv2 decodes without it), but faster and stricter.
    install_requires=["setuptools", "numpy", "opencv-python-headless", "PyYAML", "simplejpeg"],
    extras_require={
        # ROS 2 Kilted from PyPI, for machines without a ROS install (CI, quick start).
        "ros-wheels": ["ros-rclpy", "ros-sensor-msgs", "ros-std-msgs", "ros-diagnostic-msgs",
                       "ros-rmw-fastrtps-cpp"],
        "onnx": ["onnxruntime"],
        "test": ["pytest", "pytest-timeout", "pytest-rerunfailures", "onnx", "onnxruntime", "ruff",
                 "colcon-common-extensions", "catkin-pkg"],
    },
    zip_safe=True,
    maintainer="cam_guard maintainers",
    maintainer_email="maintainers@cam-guard.invalid",
    description="Camera, reward-classifier and preview nodes that keep robot-learning cameras alive",
    license="Apache-2.0",
    scripts=[f"bin/{name}" for name in EXECUTABLES],
)
