"""Tiny real ONNX classifiers built with the onnx package (no torch needed)."""

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def mean_logit_model(path: Path, cameras: int = 1, size: int = 128, weights: list[float] | None = None) -> Path:
    """logit = mean of all normalised input pixels, summed over cameras (each times its weight, default 1):
    white → high, black → low. Unequal weights make the cameras' order visible in the result."""
    weights = weights or [1.0] * cameras
    inputs = [helper.make_tensor_value_info(f"camera{i}", TensorProto.FLOAT, [1, 3, size, size])
              for i in range(cameras)]
    nodes = [helper.make_node("ReduceMean", [f"camera{i}"], [f"mean{i}"], keepdims=0) for i in range(cameras)]
    initializers = [helper.make_tensor(f"weight{i}", TensorProto.FLOAT, [], [w]) for i, w in enumerate(weights)]
    nodes += [helper.make_node("Mul", [f"mean{i}", f"weight{i}"], [f"term{i}"]) for i in range(cameras)]
    nodes.append(helper.make_node("Sum", [f"term{i}" for i in range(cameras)], ["logit"]))
    graph = helper.make_graph(nodes, "mean_logit", inputs,
                              [helper.make_tensor_value_info("logit", TensorProto.FLOAT, [])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
