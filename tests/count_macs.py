#!/usr/bin/python3
"""An independent MAC count of a model-zoo model, to check `kiln inspect`.

    /usr/bin/python3 tests/count_macs.py NAME 1x3x224x224

NAME is a model of tools/zoo/export.py; the shape is its input's (a model
with several inputs, or integer ones, is counted on its stored test inputs
through count_inputs()). Prints the
multiply-accumulates of the PyTorch model's matrix products, counted the way
fvcore does (from a torch.jit trace, so the attention products inside
nn.MultiheadAttention count too) plus thop-style hooks for the recurrent
layers. It shares nothing with kiln, not even the ONNX file:
    convolution         numel(output) * numel(weight) / out_channels
    transposed conv     numel(input) * numel(weight) / in_channels
    linear, matmul, mm, bmm, addmm, baddbmm
                        numel(output) * K (the contracted size)
    einsum              (operands - 1) * the product of every label's extent
    LSTM, GRU, RNN      seq * batch * numel(all weight_ih and weight_hh)
Needs Debian's python3-torch and python3-torchvision.
"""
import os
import sys
import warnings

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "zoo"))
import export  # noqa: E402  (tools/zoo/export.py: the model definitions)


def numel(sizes):
    n = 1
    for s in sizes:
        n *= s
    return n


def sizes(value):
    s = value.type().sizes()
    if s is None or any(d is None for d in s):
        raise SystemExit(f"no static shape for {value}")
    return s


# aten op -> index of the left operand whose last dim is contracted
MATMUL_LHS = {"aten::linear": 0, "aten::matmul": 0, "aten::mm": 0, "aten::bmm": 0, "aten::addmm": 1,
              "aten::baddbmm": 1}


def einsum_macs(equation, operand_sizes):
    lhs = equation.replace(" ", "").split("->")[0].split(",")
    if any("..." in term for term in lhs):
        raise SystemExit(f"einsum with '...' is not counted by this script: {equation}")
    extent = {}
    for term, dims in zip(lhs, operand_sizes):
        for label, d in zip(term, dims):
            extent[label] = max(extent.get(label, 1), d)
    points = numel(extent.values())
    return points * (len(lhs) - 1)


def trace_macs(model, xs):
    # As fvcore does: this trace has the parameters as typed graph inputs.
    graph, _ = torch.jit._get_trace_graph(model, tuple(xs))
    total = 0
    for node in graph.nodes():
        kind = node.kind()
        inputs = list(node.inputs())
        if kind in ("aten::_convolution", "aten::conv1d", "aten::conv2d", "aten::conv3d"):
            w = sizes(inputs[1])
            transposed = kind == "aten::_convolution" and inputs[6].toIValue()
            counted = sizes(inputs[0]) if transposed else sizes(node.output())
            total += numel(counted) * numel(w) // w[0]
        elif kind in MATMUL_LHS:
            lhs = sizes(inputs[MATMUL_LHS[kind]])
            total += numel(sizes(node.output())) * lhs[-1]
        elif kind == "aten::einsum":
            operands = list(inputs[1].node().inputs())
            total += einsum_macs(inputs[0].toIValue(), [sizes(v) for v in operands])
    return total


def rnn_hooks(model, counter):
    def hook(module, args, _out):
        x = args[0]
        seq, batch = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1])
        weights = sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight_"))
        counter[0] += int(seq) * int(batch) * weights

    for m in model.modules():
        if isinstance(m, (nn.LSTM, nn.GRU, nn.RNN)):
            m.register_forward_hook(hook)


def count(name, shape):
    return count_inputs(name, [torch.randn(*shape)])


def count_inputs(name, inputs):
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = export.MODELS[name].build().eval()
    rnn = [0]
    rnn_hooks(model, rnn)
    # With grad enabled, nn.MultiheadAttention and nn.TransformerEncoderLayer
    # take their composite path (matmuls visible to the trace), not the fused
    # fast path.
    return trace_macs(model, inputs) + rnn[0]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(int(count(sys.argv[1], [int(d) for d in sys.argv[2].split("x")])))


if __name__ == "__main__":
    main()
