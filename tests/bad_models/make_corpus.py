#!/usr/bin/python3
"""Writes the corpus of bad model files that the test suite replays.

Each file must make kiln fail with a clear error (kiln::Error, exit code 1
from the CLI), never a crash, hang or huge allocation. Run with Debian's
/usr/bin/python3 (python3-onnx); the files are checked in, so this only
needs re-running when a case is added. EXPECT lists a phrase each error must
contain.
"""
import os
import random

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECT = {}


def model(nodes, inputs, outputs, inits=(), opset=17, ir=8, value_info=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits), value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def save(name, m_or_bytes, expect):
    path = os.path.join(HERE, name)
    data = m_or_bytes if isinstance(m_or_bytes, bytes) else m_or_bytes.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    EXPECT[name] = expect


def main():
    rng = random.Random(7)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    good = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x], [y])
    good_bytes = good.SerializeToString()

    save("random_bytes.onnx", bytes(rng.getrandbits(8) for _ in range(512)), "not")
    save("empty.onnx", b"", "not an ONNX model")
    save("truncated.onnx", good_bytes[: len(good_bytes) // 2], "not")
    t = helper.make_tensor("t", TensorProto.FLOAT, [2], [1.0, 2.0])
    save("tensor_not_model.onnx", t.SerializeToString(), "not")
    m = model([helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    m.ir_version = 99
    save("ir_version_99.onnx", m, "IR version 99")

    # Every unsupported op is listed at once.
    m = model([helper.make_node("FancyOp", ["x"], ["a"], name="fancy1", domain="com.example"),
               helper.make_node("Relu", ["a"], ["b"], name="relu"),
               helper.make_node("NotAnOnnxOp", ["b"], ["y"], name="fancy2")], [x], [y])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    save("unsupported_ops.onnx", m, "2 nodes not supported")

    # One unsupported node per reason `kiln inspect` reports: op unknown, opset
    # out of range (Gelu exists from opset 20), type unsupported (Sigmoid on
    # int32), attribute value unsupported (Celu with alpha 0).
    i = helper.make_tensor_value_info("i", TensorProto.INT32, [2, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("a", "b", "d", "y")]
    m = model([helper.make_node("FancyOp", ["x"], ["a"], name="fancy", domain="com.example"),
               helper.make_node("Gelu", ["x"], ["b"], name="gelu"),
               helper.make_node("Sigmoid", ["i"], ["c"], name="sigmoid_int"),
               helper.make_node("Celu", ["x"], ["d"], name="celu", alpha=0.0),
               helper.make_node("Relu", ["x"], ["y"], name="relu")], [x, i],
              outs[:3] + [helper.make_tensor_value_info("c", TensorProto.INT32, [2, 3]), outs[3]])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    save("unsupported_reasons.onnx", m, "4 nodes not supported")

    # Initializer whose data is shorter than its shape.
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 3], [1.0] * 6)
    w.ClearField("float_data")
    w.raw_data = b"\0" * 8
    save("short_initializer.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], [x], [y], [w]),
         "raw_data has 8 bytes")
    # A dim that overflows int64 element count.
    big = helper.make_tensor("big", TensorProto.FLOAT, [1], [1.0])
    del big.dims[:]
    big.dims.extend([1 << 40, 1 << 40])
    save("overflow_dims.onnx", model([helper.make_node("Add", ["x", "big"], ["y"])], [x], [y], [big]), "overflow")
    # A huge declared tensor with no data must not be allocated.
    huge = helper.make_tensor("huge", TensorProto.FLOAT, [1], [1.0])
    del huge.dims[:]
    huge.dims.extend([1 << 30, 1 << 10])
    huge.ClearField("float_data")
    save("huge_no_data.onnx", model([helper.make_node("Add", ["x", "huge"], ["y"])], [x], [y], [huge]),
         "values but its shape")
    # Shape mismatch inside the graph, caught at load time.
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])
    save("shape_mismatch.onnx", model([helper.make_node("Add", ["x", "z"], ["y"], name="add_bad")], [x, z], [y]),
         "add_bad")
    # An input nobody produces.
    save("undefined_input.onnx", model([helper.make_node("Relu", ["nowhere"], ["y"], name="r")], [x], [y]),
         "'nowhere' is not defined")
    # A cycle.
    save("cycle.onnx", model([helper.make_node("Relu", ["b"], ["a"], name="r1"),
                              helper.make_node("Relu", ["a"], ["b"], name="r2"),
                              helper.make_node("Relu", ["b"], ["y"], name="r3")], [x], [y]), "cycle")
    # External data outside the model's folder.
    for name, loc in [("external_absolute.onnx", "/etc/passwd"), ("external_dotdot.onnx", "../../etc/passwd")]:
        e = helper.make_tensor("e", TensorProto.FLOAT, [2, 3], [0.0] * 6)
        e.ClearField("float_data")
        e.data_location = TensorProto.EXTERNAL
        kv = e.external_data.add()
        kv.key, kv.value = "location", loc
        save(name, model([helper.make_node("Add", ["x", "e"], ["y"])], [x], [y], [e]),
             "absolute" if "absolute" in name else "escapes")
    # An element type kiln does not know.
    bad_t = helper.make_tensor_value_info("x", 1000, [2])
    m = model([helper.make_node("Relu", ["x"], ["y"])], [bad_t], [y])
    save("bad_elem_type.onnx", m, "element type 1000")
    # Deeply recursive model-local function.
    f = helper.make_function("local", "Rec", ["a"], ["b"], [helper.make_node("Rec", ["a"], ["b"], domain="local")],
                             [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    m = helper.make_model(helper.make_graph([helper.make_node("Rec", ["x"], ["y"], domain="local")], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], functions=[f])
    m.ir_version = 8
    save("recursive_function.onnx", m, "nests deeper")

    with open(os.path.join(HERE, "expected_errors.tsv"), "w") as f:
        f.write("# file\tphrase the error message must contain\n")
        for k in sorted(EXPECT):
            f.write(f"{k}\t{EXPECT[k]}\n")


if __name__ == "__main__":
    main()
