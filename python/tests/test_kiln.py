"""The Python package against its promises (docs/python.md): onnxruntime's
API surface, a script written for onnxruntime running unchanged, outputs
equal to the CLI's, inputs used in place, threads, pickling, engines,
checkpoints and bad input.

Run by ctest (python_api) with PYTHONPATH=build/python, KILN_CLI=build/kiln,
KILN_ZOO=build/zoo (the small zoo; its tests skip when it is not there).
"""

import concurrent.futures
import gc
import os
import pickle
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import kiln

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO, "models", "digits", "model.onnx")
SAMPLES = np.load(os.path.join(REPO, "models", "digits", "samples", "digits10.npy"))
KILN_CLI = os.environ.get("KILN_CLI", os.path.join(REPO, "build", "kiln"))
ZOO = os.environ.get("KILN_ZOO", os.path.join(REPO, "build", "zoo"))


def one_thread():
    o = kiln.SessionOptions()
    o.intra_op_num_threads = 1
    return o


def cli_outputs(model, feed, tmp_path):
    """What `kiln run` writes for the same inputs, {name: array}."""
    args = [KILN_CLI, "run", model, "--threads", "1", "--output-dir", str(tmp_path / "cli")]
    for name, value in feed.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, value)
        args += ["--input", f"{name}={path}"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return {f[:-4]: np.load(tmp_path / "cli" / f) for f in os.listdir(tmp_path / "cli")}


# onnxruntime's documented usage, word for word, with `import kiln as onnxruntime`.
ORT_SCRIPT = """
import numpy as np
import onnxruntime
sess = onnxruntime.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
feed = {}
for i in sess.get_inputs():
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64}[i.type]
    feed[i.name] = FEED.get(i.name, np.zeros(shape, dtype))
outputs = sess.run([o.name for o in sess.get_outputs()], feed)
RESULT = dict(zip([o.name for o in sess.get_outputs()], outputs))
"""


def run_ort_script(model, feed):
    sys.modules["onnxruntime"] = kiln
    try:
        scope = {"MODEL": model, "FEED": feed}
        exec(ORT_SCRIPT, scope)
        return scope["RESULT"]
    finally:
        del sys.modules["onnxruntime"]


def zoo_models():
    names = ["mobilenet_v3_small", "gru"]
    return [n for n in names if os.path.exists(os.path.join(ZOO, n, "model.onnx"))]


def zoo_feed(name):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.path.join(ZOO, name, "model.onnx"), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    folder = os.path.join(ZOO, name, "test_data_set_0")
    feed = {}
    for k, n in enumerate(names):
        t = onnx.TensorProto()
        with open(os.path.join(folder, f"input_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        feed[n] = numpy_helper.to_array(t)
    return feed


def test_version_and_providers():
    assert kiln.__version__ == subprocess.run([KILN_CLI, "--version"], capture_output=True, text=True).stdout.split()[1]
    assert kiln.get_available_providers() == ["CPUExecutionProvider"]
    assert kiln.get_device() == "CPU"


def test_inputs_outputs_and_metadata():
    s = kiln.InferenceSession(DIGITS)
    (i,) = s.get_inputs()
    (o,) = s.get_outputs()
    assert (i.name, i.type, i.shape) == ("image", "tensor(float)", ["batch", 1, 8, 8])
    assert (o.name, o.type, o.shape) == ("logits", "tensor(float)", ["batch", 10])
    assert s.get_providers() == ["CPUExecutionProvider"]
    assert s.get_modelmeta().producer_name.startswith("pytorch")
    assert not s.is_engine


def test_outputs_equal_the_cli(tmp_path):
    s = kiln.InferenceSession(DIGITS, one_thread())
    (got,) = s.run(None, {"image": SAMPLES})
    np.testing.assert_array_equal(got, cli_outputs(DIGITS, {"image": SAMPLES}, tmp_path)["logits"])
    np.testing.assert_array_equal(s({"image": SAMPLES})["logits"], got)
    assert s.run(["logits"], {"image": SAMPLES})[0].shape == (10, 10)


@pytest.mark.parametrize("name", ["digits"] + zoo_models())
def test_onnxruntime_script_runs_unchanged(name, tmp_path):
    if name == "digits":
        model, feed = DIGITS, {"image": SAMPLES}
    else:
        model, feed = os.path.join(ZOO, name, "model.onnx"), zoo_feed(name)
    result = run_ort_script(model, feed)
    want = cli_outputs(model, feed, tmp_path)
    assert set(result) == set(want)
    for k in want:
        # The CLI ran on one thread, the script on the default: the same
        # kernels, possibly split differently.
        np.testing.assert_allclose(result[k], want[k], rtol=1e-4, atol=1e-5)


def test_session_options_map_to_kiln():
    o = kiln.SessionOptions()
    o.intra_op_num_threads = 1
    o.graph_optimization_level = kiln.GraphOptimizationLevel.ORT_DISABLE_ALL
    o.enable_mem_pattern = False
    o.input_shapes = {"image": (3, 1, 8, 8)}
    s = kiln.InferenceSession(DIGITS, sess_options=o)
    assert s.get_inputs()[0].shape == [3, 1, 8, 8]
    full = kiln.InferenceSession(DIGITS, one_thread())
    np.testing.assert_allclose(s.run(None, {"image": SAMPLES[:3]})[0], full.run(None, {"image": SAMPLES[:3]})[0],
                               rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        kiln.InferenceSession(DIGITS, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert any("CUDAExecutionProvider" in str(x.message) for x in w)


def test_inputs_are_used_in_place_when_they_can_be():
    image = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    path = os.path.join(ZOO, "mobilenet_v3_small", "model.onnx")
    s = kiln.InferenceSession(path if os.path.exists(path) else DIGITS)
    name = s.get_inputs()[0].name
    if s.get_inputs()[0].shape[1] != 3:
        image = SAMPLES
    (addr,) = s._session._feed_addresses({name: image})
    assert addr == image.__array_interface__["data"][0]
    strided = np.asfortranarray(image)
    (addr,) = s._session._feed_addresses({name: strided})
    assert addr != strided.__array_interface__["data"][0]  # one copy, made C-contiguous
    np.testing.assert_array_equal(s.run(None, {name: strided})[0], s.run(None, {name: image})[0])


def test_lists_and_scalars_are_accepted():
    s = kiln.InferenceSession(DIGITS)
    np.testing.assert_array_equal(s.run(None, {"image": SAMPLES[:2].tolist()})[0], s.run(None, {"image": SAMPLES[:2]})[0])


def test_outputs_own_their_memory():
    s = kiln.InferenceSession(DIGITS)
    first = s.run(None, {"image": SAMPLES})[0]
    kept = first.copy()
    for _ in range(3):
        s.run(None, {"image": SAMPLES[::-1].copy()})
    del s
    gc.collect()
    np.testing.assert_array_equal(first, kept)


def test_threads_share_one_session():
    s = kiln.InferenceSession(DIGITS)
    batches = [SAMPLES[k : k + 5] for k in range(0, 6)]
    serial = [s.run(None, {"image": b})[0] for b in batches]
    results = [None] * (4 * len(batches))

    def work(t):
        for k, b in enumerate(batches):
            results[t * len(batches) + k] = s.run(None, {"image": b})[0]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in range(4):
        for k in range(len(batches)):
            np.testing.assert_array_equal(results[t * len(batches) + k], serial[k])


def test_run_async_calls_back():
    s = kiln.InferenceSession(DIGITS)
    done = threading.Event()
    got = {}

    def callback(outputs, user_data, err):
        got.update(outputs=outputs, user_data=user_data, err=err)
        done.set()

    s.run_async(None, {"image": SAMPLES}, callback, "tag")
    assert done.wait(30)
    assert got["err"] == "" and got["user_data"] == "tag"
    np.testing.assert_array_equal(got["outputs"][0], s.run(None, {"image": SAMPLES})[0])
    done.clear()
    s.run_async(None, {"nope": SAMPLES}, callback)
    assert done.wait(30)
    assert got["outputs"] is None and "nope" in got["err"]


def _run_pickled(session, batch):
    return session.run(None, {"image": batch})[0]


def test_sessions_pickle_across_processes():
    s = kiln.InferenceSession(DIGITS, one_thread())
    again = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(again.run(None, {"image": SAMPLES})[0], s.run(None, {"image": SAMPLES})[0])
    assert again.get_session_options().intra_op_num_threads == 1
    with open(DIGITS, "rb") as f:
        from_bytes = kiln.InferenceSession(f.read())
    assert pickle.loads(pickle.dumps(from_bytes)).get_inputs()[0].name == "image"
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        outs = list(pool.map(_run_pickled, [s, s], [SAMPLES[:5], SAMPLES[5:]]))
    np.testing.assert_array_equal(np.concatenate(outs), s.run(None, {"image": SAMPLES})[0])


def test_engines_build_and_run(tmp_path):
    engine = str(tmp_path / "digits.kiln")
    report = kiln.build_engine(DIGITS, engine, min_shapes={"image": (1, 1, 8, 8)}, opt_shapes={"image": (4, 1, 8, 8)},
                               max_shapes={"image": (16, 1, 8, 8)}, time_tactics=False)
    assert report["engine_bytes"] == os.path.getsize(engine) and report["nodes"] > 0
    s = kiln.InferenceSession(engine, one_thread())
    assert s.is_engine and len(s.profiles) == 1
    want = kiln.InferenceSession(DIGITS, one_thread()).run(None, {"image": SAMPLES})[0]
    np.testing.assert_allclose(s.run(None, {"image": SAMPLES})[0], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(kiln.Error, match="profile"):
        s.run(None, {"image": np.zeros((17, 1, 8, 8), np.float32)})
    again = pickle.loads(pickle.dumps(s))
    assert again.is_engine
    np.testing.assert_array_equal(again.run(None, {"image": SAMPLES})[0], s.run(None, {"image": SAMPLES})[0])
    with pytest.raises(kiln.InvalidArgument, match="max_shapes"):
        kiln.build_engine(DIGITS, engine, min_shapes={"image": (1, 1, 8, 8)})
    # Damaged engines and random bytes: an exception, never a crash.
    data = open(engine, "rb").read()
    rng = np.random.default_rng(3)
    for cut in [0, 8, 64, len(data) // 2, len(data) - 1]:
        with pytest.raises(kiln.InvalidModel):
            kiln.InferenceSession(data[:cut])
    for _ in range(20):
        flipped = bytearray(data)
        flipped[int(rng.integers(len(data)))] ^= 0xFF
        try:
            kiln.InferenceSession(bytes(flipped))
        except kiln.Error:
            pass
        with pytest.raises(kiln.InvalidModel):
            kiln.InferenceSession(rng.bytes(int(rng.integers(1, 4096))))


def test_load_weights_reads_checkpoints_without_pickle():
    import torch

    seeds = os.path.join(REPO, "tests", "fuzz", "weights_seeds")
    for f in ["dtypes.pt", "weights.safetensors"]:
        got = kiln.load_weights(os.path.join(seeds, f))
        assert got, f
        if f.endswith(".pt"):
            ref = torch.load(os.path.join(seeds, f))
            for k, v in ref.items():
                if isinstance(v, torch.Tensor) and v.dtype != torch.bfloat16:
                    np.testing.assert_array_equal(got[k], v.numpy())
    with pytest.raises(kiln.Error, match="nope.pt"):
        kiln.load_weights("nope.pt")


def test_bad_input_raises_clear_errors(tmp_path):
    s = kiln.InferenceSession(DIGITS)
    with pytest.raises(kiln.InvalidArgument, match=r"input 'image': expected tensor\(float\).*float64"):
        s.run(None, {"image": SAMPLES.astype(np.float64)})
    o = kiln.SessionOptions()
    o.cast_inputs = True
    np.testing.assert_allclose(kiln.InferenceSession(DIGITS, o).run(None, {"image": SAMPLES.astype(np.float64)})[0],
                               s.run(None, {"image": SAMPLES})[0], rtol=1e-6)
    with pytest.raises(kiln.InvalidArgument, match="'imag' is not an input"):
        s.run(None, {"imag": SAMPLES})
    with pytest.raises(kiln.InvalidArgument, match="'probs' is not an output"):
        s.run(["probs"], {"image": SAMPLES})
    with pytest.raises(kiln.InvalidArgument, match="dim 2 must be 8"):
        s.run(None, {"image": np.zeros((1, 1, 7, 8), np.float32)})
    with pytest.raises(kiln.InvalidArgument, match="expected rank 4"):
        s.run(None, {"image": np.zeros((8, 8), np.float32)})
    with pytest.raises(kiln.Error, match="'image'.*required"):
        s.run(None, {})
    with pytest.raises(kiln.InvalidModel, match="no-such.onnx"):
        kiln.InferenceSession(str(tmp_path / "no-such.onnx"))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(DIGITS, "rb").read()[:200])
    with pytest.raises(kiln.InvalidModel, match="truncated.onnx"):
        kiln.InferenceSession(str(truncated))
    with pytest.raises(kiln.InvalidModel):
        kiln.InferenceSession(b"not a model")
    assert issubclass(kiln.InvalidArgument, kiln.Error) and issubclass(kiln.Error, RuntimeError)


def test_unsupported_ops_are_named(tmp_path):
    from onnx import TensorProto, helper, save

    g = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="example.com")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "custom.onnx"
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.com", 1)]),
         str(path))
    with pytest.raises(kiln.UnsupportedOpError, match="NoSuchOp"):
        kiln.InferenceSession(str(path))


def test_inspect_is_kiln_inspects_json(tmp_path):
    import json

    got = kiln.inspect(DIGITS, {"image": (2, 1, 8, 8)})
    cli = json.loads(subprocess.run([KILN_CLI, "inspect", DIGITS, "--shapes", "image:2x1x8x8", "--format", "json"],
                                    check=True, capture_output=True, text=True).stdout)
    assert got == cli
    assert got["totals"]["params"] == 1898 and got["nodes"][0]["op"] == "Conv"
    assert kiln.inspect(DIGITS, {"image": (1, 1, 8, 8)}, optimized=True)["graph"] == "optimized"
    with pytest.raises(kiln.Error, match="image: float"):
        kiln.inspect(DIGITS)  # a symbolic batch: the counts need numbers
    engine = str(tmp_path / "d.kiln")
    kiln.build_engine(DIGITS, engine, shapes={"image": (4, 1, 8, 8)}, time_tactics=False)
    e = kiln.inspect(engine)
    assert e["format_version"] >= 1 and e["profiles"][0]["inputs"]["image"]["max"] == [4, 1, 8, 8]


def test_compare_measures_against_references():
    feed = {"image": SAMPLES}
    r = kiln.compare(DIGITS, feed)  # against the same model, optimizer off
    assert r["passed"] and r["outputs"]["logits"]["cosine"] > 0.9999
    want = kiln.InferenceSession(DIGITS).run(None, feed)[0]
    assert kiln.compare(DIGITS, feed, {"logits": want}, rtol=0, atol=0)["passed"]
    off = want.copy()
    off[3, 4] += 1.0
    r = kiln.compare(DIGITS, feed, lambda f: [off])
    o = r["outputs"]["logits"]
    assert not r["passed"] and o["failing"] == 1 and o["worst_index"] == 3 * 10 + 4
    assert o["max_abs"] == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(kiln.InvalidArgument, match="none of the outputs"):
        kiln.compare(DIGITS, feed, {"probs": want})
