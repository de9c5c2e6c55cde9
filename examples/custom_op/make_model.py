"""Writes the custom-op example: a model using com.example:SoftClip between
two standard ops, and an ONNX test data folder (input_0.pb, output_0.pb) with
the expected output computed here with numpy.

    /usr/bin/python3 examples/custom_op/make_model.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(out):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
        helper.make_node("SoftClip", ["h"], ["c"], name="soft_clip", domain="com.example", bound=2.0),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "soft_clip_example",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    os.makedirs(os.path.join(out, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(out, "model.onnx"))
    x = rng.standard_normal((4, 16)).astype(np.float32)
    y = np.maximum(2.0 * np.tanh((x @ w) / 2.0), 0).astype(np.float32)
    for name, arr, file in (("x", x, "input_0.pb"), ("y", y, "output_0.pb")):
        with open(os.path.join(out, "test_data_set_0", file), "wb") as f:
            f.write(numpy_helper.from_array(arr, name).SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1])
