"""kiln serve against the KServe v2 REST protocol and Triton's binary tensor
extension, through a client written from those specs (http.client only), and
against its own promises (docs/serving.md): dynamic batching that keeps each
request's answer, Triton-layout repositories with config.pbtxt, model
control, metrics, bad input, overload, slow clients, auth and SIGTERM.

Run by ctest (serve_http) with KILN_CLI=build/kiln and KILN_ZOO=build/zoo
(the small zoo; tests that need it skip when it is absent). Expected outputs
come from `kiln run` on the same inputs, computed independently of the server.
"""

import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from contextlib import contextmanager

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(REPO, "models", "digits", "model.onnx")
SAMPLES = np.load(os.path.join(REPO, "models", "digits", "samples", "digits10.npy")).astype(np.float32)
KILN_CLI = os.environ.get("KILN_CLI", os.path.join(REPO, "build", "kiln"))
ZOO = os.environ.get("KILN_ZOO", os.path.join(REPO, "build", "zoo"))

# KServe v2 datatype -> numpy dtype (BYTES handled apart).
NUMPY = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
         "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
         "FP32": np.float32, "FP64": np.float64}


# --- the server ------------------------------------------------------------

class Server:
    def __init__(self, proc, port, metrics_port, log):
        self.proc, self.port, self.metrics_port, self.log = proc, port, metrics_port, log

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


@contextmanager
def serve(repo, *args, wait_ready=True):
    cmd = [KILN_CLI, "serve", "--model-repository", str(repo), "--http-port", "0", "--metrics-port", "0", *args]
    if "--threads" not in args:
        cmd += ["--threads", "2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    log, ports = [], {}

    def reader():
        for line in proc.stderr:
            log.append(line)
            m = re.search(r"(HTTP|metrics) listening on [\d.]+:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.time() + 120
    while time.time() < deadline and not (len(ports) == 2 and (not wait_ready or any("ready" == l.split(": ")[-1].strip() for l in log))):
        assert proc.poll() is None, "kiln serve exited: " + "".join(log)
        time.sleep(0.02)
    assert len(ports) == 2, "".join(log)
    s = Server(proc, ports["HTTP"], ports["metrics"], log)
    try:
        yield s
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        t.join(5)


def request(server, method, path, body=None, headers=None):
    c = server.conn()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def get_json(server, path, method="GET"):
    status, _, data = request(server, method, path)
    assert status == 200, (path, status, data)
    return json.loads(data) if data else None


# --- the protocol, written from the specs ----------------------------------

def to_bytes_elements(values):
    """Triton's binary BYTES form: each element a 4-byte little-endian length and its bytes."""
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def from_bytes_elements(raw, count):
    out, pos = [], 0
    for _ in range(count):
        (n,) = struct.unpack_from("<I", raw, pos)
        out.append(raw[pos + 4:pos + 4 + n])
        pos += 4 + n
    assert pos == len(raw)
    return out


def infer_body(inputs, binary=False, outputs=None, binary_outputs=False, request_id=None, parameters=None):
    """inputs: [(name, datatype, array)]. Returns (body, headers)."""
    header = {"inputs": []}
    if request_id is not None:
        header["id"] = request_id
    params = dict(parameters or {})
    if binary_outputs:
        params["binary_data_output"] = True
    if params:
        header["parameters"] = params
    chunks = []
    for name, datatype, value in inputs:
        entry = {"name": name, "datatype": datatype, "shape": list(np.shape(value))}
        if datatype == "BYTES":
            flat = [v if isinstance(v, bytes) else str(v).encode() for v in np.asarray(value, dtype=object).reshape(-1)]
            if binary:
                raw = to_bytes_elements(flat)
                entry["parameters"] = {"binary_data_size": len(raw)}
                chunks.append(raw)
            else:
                entry["data"] = [v.decode() for v in flat]
        elif binary:
            raw = np.ascontiguousarray(value, dtype=NUMPY[datatype]).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = np.asarray(value).tolist()
        header["inputs"].append(entry)
    if outputs is not None:
        header["outputs"] = [{"name": n, "parameters": {"binary_data": b}} for n, b in outputs]
    text = json.dumps(header).encode()
    if binary:
        return text + b"".join(chunks), {"Inference-Header-Content-Length": str(len(text)),
                                         "Content-Type": "application/octet-stream"}
    return text, {"Content-Type": "application/json"}


def decode_response(headers, data):
    """The response's JSON and its outputs as {name: array} (BYTES: list of bytes)."""
    n = headers.get("Inference-Header-Content-Length")
    if n is None:
        header, binary = json.loads(data), b""
    else:
        header, binary = json.loads(data[:int(n)]), data[int(n):]
    outs, pos = {}, 0
    for o in header["outputs"]:
        shape, dt = o["shape"], o["datatype"]
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            raw = binary[pos:pos + size]
            pos += size
            count = int(np.prod(shape))
            outs[o["name"]] = (from_bytes_elements(raw, count) if dt == "BYTES"
                               else np.frombuffer(raw, dtype=NUMPY[dt]).reshape(shape))
        else:
            outs[o["name"]] = ([v.encode() for v in o["data"]] if dt == "BYTES"
                               else np.array(o["data"], dtype=NUMPY[dt]).reshape(shape))
    assert pos == len(binary), "binary bytes left over"
    return header, outs


def infer(server, model, inputs, expect=200, path=None, **kw):
    body, headers = infer_body(inputs, **kw)
    status, rh, data = request(server, "POST", path or f"/v2/models/{model}/infer", body, headers)
    assert status == expect, (status, data[:500])
    if status != 200:
        return rh, json.loads(data)
    return decode_response(rh, data)


def kiln_run(model, feed, tmp_path):
    """`kiln run`'s outputs for the same inputs: the independent reference."""
    out = tmp_path / f"ref{time.monotonic_ns()}"
    args = [KILN_CLI, "run", model, "--threads", "1", "--output-dir", str(out)]
    for name, value in feed.items():
        path = tmp_path / f"{name}{time.monotonic_ns()}.npy"
        np.save(path, value)
        args += ["--input", f"{name}={path}"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return {f[:-4]: np.load(out / f) for f in os.listdir(out)}


def metrics(server):
    status, _, data = request(server, "GET", "/metrics")
    assert status == 200
    values = {}
    for line in data.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, value = line.rsplit(" ", 1)
        values[key] = float(value)
    return values


# --- repositories ----------------------------------------------------------

def add_model(repo, name, src=None, model=None, version="1", config=None):
    d = repo / name / version
    d.mkdir(parents=True, exist_ok=True)
    if model is not None:
        onnx.save(model, str(d / "model.onnx"))
    else:
        (d / "model.onnx").write_bytes(open(src, "rb").read())
    if config is not None:
        (repo / name / "config.pbtxt").write_text(config)


def datatypes_model():
    """One input and output per datatype: y_T = x_T passed through an op of that type."""
    nodes, inputs, outputs = [], [], []
    for name, et, op in [("f32", TensorProto.FLOAT, "Neg"), ("f64", TensorProto.DOUBLE, "Neg"),
                         ("f16", TensorProto.FLOAT16, "Neg"), ("i64", TensorProto.INT64, "Neg"),
                         ("i32", TensorProto.INT32, "Neg"), ("i8", TensorProto.INT8, "Neg"),
                         ("u8", TensorProto.UINT8, "Identity"), ("b", TensorProto.BOOL, "Not"),
                         ("s", TensorProto.STRING, "Identity")]:
        inputs.append(helper.make_tensor_value_info("x_" + name, et, ["batch", 3]))
        outputs.append(helper.make_tensor_value_info("y_" + name, et, ["batch", 3]))
        nodes.append(helper.make_node(op, ["x_" + name], ["y_" + name]))
    g = helper.make_graph(nodes, "types", inputs, outputs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    r = tmp_path_factory.mktemp("repo")
    add_model(r, "digits", DIGITS)
    # Batching made likely: a delay long enough for concurrent requests to meet.
    add_model(r, "digits_batched", DIGITS, config="""
max_batch_size: 8
dynamic_batching { max_queue_delay_microseconds: 20000 }
""")
    add_model(r, "types", model=datatypes_model())
    (r / "broken" / "1").mkdir(parents=True)
    (r / "broken" / "1" / "model.onnx").write_bytes(b"not a model")
    return r


@pytest.fixture(scope="module")
def server(repo):
    with serve(repo) as s:
        yield s


# --- tests -----------------------------------------------------------------

def test_server_and_model_metadata(server):
    meta = get_json(server, "/v2")
    assert meta["name"] == "kiln" and "binary_tensor_data" in meta["extensions"]
    assert request(server, "GET", "/v2/health/live")[0] == 200
    assert request(server, "GET", "/v2/health/ready")[0] == 200
    m = get_json(server, "/v2/models/digits")
    assert m["name"] == "digits" and m["versions"] == ["1"]
    assert m["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert m["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert get_json(server, "/v2/models/digits/versions/1") == m
    assert request(server, "GET", "/v2/models/digits/ready")[0] == 200
    assert request(server, "GET", "/v2/models/digits/versions/1/ready")[0] == 200
    status, _, data = request(server, "GET", "/v2/models/nope")
    assert status == 404 and "nope" in json.loads(data)["error"]
    status, _, data = request(server, "GET", "/v2/models/digits/versions/7")
    assert status == 404 and "'7'" in json.loads(data)["error"]
    assert request(server, "GET", "/v2/models/broken/ready")[0] in (400, 503)


def test_json_infer_nested_and_flat_data(server, tmp_path):
    x = SAMPLES[3:4]
    want = kiln_run(DIGITS, {"image": x}, tmp_path)["logits"]
    header, outs = infer(server, "digits", [("image", "FP32", x)], request_id="req-42")
    assert header["id"] == "req-42" and header["model_name"] == "digits" and header["model_version"] == "1"
    assert header["outputs"][0]["shape"] == [1, 10] and header["outputs"][0]["datatype"] == "FP32"
    np.testing.assert_allclose(outs["logits"], want, rtol=1e-5, atol=1e-6)
    # Flat data with the shape given apart (the spec allows both).
    body = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                   "data": x.reshape(-1).tolist()}]})
    status, rh, data = request(server, "POST", "/v2/models/digits/versions/1/infer", body)
    assert status == 200
    np.testing.assert_allclose(decode_response(rh, data)[1]["logits"], want, rtol=1e-5, atol=1e-6)
    assert "id" not in json.loads(data)


def test_binary_extension_both_ways(server, tmp_path):
    x = SAMPLES[:2]
    want = kiln_run(DIGITS, {"image": x}, tmp_path)["logits"]
    # Binary in, binary out (request-level parameter).
    header, outs = infer(server, "digits", [("image", "FP32", x)], binary=True, binary_outputs=True)
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 2 * 10 * 4
    np.testing.assert_allclose(outs["logits"], want, rtol=1e-5, atol=1e-6)
    # Binary in, JSON out; JSON in, binary out (per-output parameter).
    _, outs = infer(server, "digits", [("image", "FP32", x)], binary=True)
    np.testing.assert_allclose(outs["logits"], want, rtol=1e-5, atol=1e-6)
    _, outs = infer(server, "digits", [("image", "FP32", x)], outputs=[("logits", True)])
    np.testing.assert_allclose(outs["logits"], want, rtol=1e-5, atol=1e-6)


def test_every_datatype_round_trips(server):
    rng = np.random.default_rng(0)
    values = {
        "f32": ("FP32", rng.standard_normal((2, 3)).astype(np.float32)),
        "f64": ("FP64", rng.standard_normal((2, 3))),
        "f16": ("FP16", rng.standard_normal((2, 3)).astype(np.float16)),
        "i64": ("INT64", rng.integers(-2**40, 2**40, (2, 3))),
        "i32": ("INT32", rng.integers(-2**30, 2**30, (2, 3)).astype(np.int32)),
        "i8": ("INT8", rng.integers(-100, 100, (2, 3)).astype(np.int8)),
        "u8": ("UINT8", rng.integers(0, 255, (2, 3)).astype(np.uint8)),
        "b": ("BOOL", rng.integers(0, 2, (2, 3)).astype(bool)),
        "s": ("BYTES", np.array([["a", "", "héllo"], ["x" * 100, "\"quoted\"\n", "z"]], dtype=object)),
    }
    expected = {"f32": -values["f32"][1], "f64": -values["f64"][1], "f16": -values["f16"][1],
                "i64": -values["i64"][1], "i32": -values["i32"][1], "i8": -values["i8"][1],
                "u8": values["u8"][1], "b": ~values["b"][1],
                "s": [v.encode() for v in values["s"][1].reshape(-1)]}
    inputs = [("x_" + k, dt, v) for k, (dt, v) in values.items()]
    for binary in (False, True):
        header, outs = infer(server, "types", inputs, binary=binary, binary_outputs=binary)
        for k, want in expected.items():
            got = outs["y_" + k]
            if k == "s":
                assert got == want, binary
            else:
                assert got.dtype == want.dtype and np.array_equal(got, want), (k, binary)
        types = {o["name"]: o["datatype"] for o in header["outputs"]}
        assert types == {"y_" + k: dt for k, (dt, _) in values.items()}


def test_requested_outputs_subset(server):
    x = np.zeros((1, 3), np.float32)
    inputs = [("x_f32", "FP32", x), ("x_f64", "FP64", x.astype(np.float64)), ("x_f16", "FP16", x.astype(np.float16)),
              ("x_i64", "INT64", x.astype(np.int64)), ("x_i32", "INT32", x.astype(np.int32)),
              ("x_i8", "INT8", x.astype(np.int8)), ("x_u8", "UINT8", x.astype(np.uint8)),
              ("x_b", "BOOL", x.astype(bool)), ("x_s", "BYTES", np.array([["a", "b", "c"]], dtype=object))]
    header, outs = infer(server, "types", inputs, outputs=[("y_i64", False), ("y_s", True)])
    assert [o["name"] for o in header["outputs"]] == ["y_i64", "y_s"]
    assert outs["y_s"] == [b"a", b"b", b"c"]
    _, err = infer(server, "types", inputs, outputs=[("y_nope", False)], expect=400)
    assert "y_nope" in err["error"]


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, tmp_path):
    want = kiln_run(DIGITS, {"image": SAMPLES}, tmp_path)["logits"]
    before = metrics(server)
    results, errors = {}, []

    def client(i):
        try:
            # Requests of batch 1 and 2 mixed: rows must come back to their request.
            rows = SAMPLES[i:i + 1] if i % 3 else SAMPLES[i:i + 2]
            binary = i % 2 == 0
            _, outs = infer(server, "digits_batched", [("image", "FP32", rows)], binary=binary, binary_outputs=binary)
            results[i] = outs["logits"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, got in results.items():
        rows = want[i:i + 1] if i % 3 else want[i:i + 2]
        np.testing.assert_allclose(got, rows, rtol=1e-5, atol=1e-5)
    after = metrics(server)
    key = '{model="digits_batched",version="1"}'
    execs = after["nv_inference_exec_count" + key] - before.get("nv_inference_exec_count" + key, 0)
    inferences = after["nv_inference_count" + key] - before.get("nv_inference_count" + key, 0)
    assert inferences == sum(1 if i % 3 else 2 for i in range(8))
    assert execs < 8, "no two requests were batched together"


BAD_REQUESTS = [
    # (description, body, extra headers, status, words the error must contain)
    ("not JSON", b"{inputs: oops", {}, 400, ["JSON"]),
    ("not an object", b"[1,2]", {}, 400, ["object"]),
    ("no inputs", b"{}", {}, 400, ["inputs"]),
    ("unknown input", json.dumps({"inputs": [{"name": "img", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                              "data": [0] * 64}]}).encode(), {}, 400, ["img", "image"]),
    ("wrong datatype", json.dumps({"inputs": [{"name": "image", "datatype": "FP64", "shape": [1, 1, 8, 8],
                                               "data": [0] * 64}]}).encode(), {}, 400, ["FP64", "FP32"]),
    ("unknown datatype", json.dumps({"inputs": [{"name": "image", "datatype": "FLOAT", "shape": [1, 1, 8, 8],
                                                 "data": [0] * 64}]}).encode(), {}, 400, ["FLOAT"]),
    ("wrong shape", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 7],
                                            "data": [0] * 56}]}).encode(), {}, 400, ["[1,1,8,7]"]),
    ("batch too big", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [9, 1, 8, 8],
                                              "data": [0] * 576}]}).encode(), {}, 400, ["batch 9"]),
    ("data count", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                           "data": [0] * 63}]}).encode(), {}, 400, ["63", "64"]),
    ("string in data", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                               "data": ["x"] * 64}]}).encode(), {}, 400, ["not a number"]),
    ("negative dim", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, -1, 8, 8],
                                             "data": []}]}).encode(), {}, 400, ["negative"]),
    ("huge shape", json.dumps({"inputs": [{"name": "image", "datatype": "FP32",
                                           "shape": [2**40, 2**40, 8, 8], "data": []}]}).encode(), {}, 400, ["too many"]),
    ("no data", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8]}]}).encode(),
     {}, 400, ["neither"]),
    ("truncated binary", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                                 "parameters": {"binary_data_size": 256}}]}).encode() + b"\0" * 100,
     "HEADER", 400, ["binary_data_size", "100"]),
    ("binary size mismatch", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                                     "parameters": {"binary_data_size": 128}}]}).encode() + b"\0" * 128,
     "HEADER", 400, ["256"]),
    ("trailing binary", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                                "parameters": {"binary_data_size": 256}}]}).encode() + b"\0" * 300,
     "HEADER", 400, ["44"]),
    ("header length past body", b"{}", {"Inference-Header-Content-Length": "99999"}, 400, ["99999"]),
    ("header length not a number", b"{}", {"Inference-Header-Content-Length": "12x"}, 400, ["12x"]),
    ("huge declared binary", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                                     "parameters": {"binary_data_size": 2**62}}]}).encode(),
     "HEADER", 400, ["binary_data_size"]),
    ("nested array in flat data", json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                                          "data": [0] * 63 + [[]]}]}).encode(), {}, 400, ["63", "64"]),
    ("deep nesting", b'{"inputs":[{"name":"image","datatype":"FP32","shape":[1],"data":' + b"[" * 40 + b"1" + b"]" * 40 + b"}]}",
     {}, 400, ["nested"]),
]


@pytest.mark.parametrize("what,body,headers,status,words", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_400_naming_the_problem(server, what, body, headers, status, words):
    if headers == "HEADER":
        headers = {"Inference-Header-Content-Length": str(body.index(b"}]}") + 3)}
    code, _, data = request(server, "POST", "/v2/models/digits/infer", body, headers)
    assert code == status, (code, data)
    message = json.loads(data)["error"]
    for w in words:
        assert w in message, (w, message)


def test_unknown_endpoints_and_methods(server):
    assert request(server, "GET", "/v3")[0] == 404
    assert request(server, "GET", "/v2/models/digits/infer")[0] == 405
    assert request(server, "POST", "/v2/models/nope/infer", b"{}")[0] == 404
    assert request(server, "GET", "/v2/models/digits/frobnicate")[0] == 404


def test_metrics_are_prometheus_text(server):
    infer(server, "digits", [("image", "FP32", SAMPLES[:1])])
    m = metrics(server)
    key = '{model="digits",version="1"}'
    for name in ["nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
                 "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                 "nv_inference_compute_infer_duration_us", "nv_inference_pending_request_count"]:
        assert name + key in m, name
    assert m["nv_inference_request_success" + key] >= 1
    assert m["process_resident_memory_bytes"] > 1e6 and m["process_cpu_seconds_total"] > 0
    # The metrics port serves the same, and nothing else.
    c = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
    c.request("GET", "/metrics")
    assert c.getresponse().status == 200
    c.close()


def test_repository_index_and_model_control(repo):
    with serve(repo) as s:
        index = {m["name"]: m for m in get_json(s, "/v2/repository/index", "POST")}
        assert index["digits"]["state"] == "READY"
        assert index["broken"]["state"] == "UNAVAILABLE" and "not a valid ONNX model" in index["broken"]["reason"]
        assert any("broken" in line and "failed to load" in line for line in s.log)
        assert request(s, "POST", "/v2/repository/models/digits/unload")[0] == 200
        assert request(s, "GET", "/v2/models/digits/ready")[0] in (400, 503)
        infer(s, "digits", [("image", "FP32", SAMPLES[:1])], expect=503)
        assert request(s, "POST", "/v2/repository/models/digits/load")[0] == 200
        infer(s, "digits", [("image", "FP32", SAMPLES[:1])])
        status, _, data = request(s, "POST", "/v2/repository/models/broken/load")
        assert status == 400 and "not a valid ONNX model" in json.loads(data)["error"]
        assert request(s, "POST", "/v2/repository/models/nothing/load")[0] == 404


def small_zoo(name):
    path = os.path.join(ZOO, name, "model.onnx")
    if not os.path.exists(path):
        pytest.skip(f"the small zoo has no {name} ({ZOO})")
    return path


def test_triton_repository_with_config_pbtxt_serves_unchanged(tmp_path):
    mobilenet, gru = small_zoo("mobilenet_v3_small"), small_zoo("gru")
    repo = tmp_path / "triton"
    # Written as for Triton's onnxruntime backend, fields kiln ignores included.
    add_model(repo, "mobilenet", mobilenet, version="3", config="""
name: "mobilenet"
platform: "onnxruntime_onnx"
max_batch_size: 4
version_policy: { latest: { num_versions: 1 } }
input [
  {
    name: "input"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
  }
]
output [ { name: "output", data_type: TYPE_FP32, dims: [ 1000 ] } ]
dynamic_batching {
  preferred_batch_size: [ 2, 4 ]
  max_queue_delay_microseconds: 5000
  default_queue_policy { max_queue_size: 16 }
}
instance_group [ { count: 2, kind: KIND_CPU } ]
optimization { execution_accelerators { cpu_execution_accelerator: [ { name: "openvino" } ] } }
# a comment
""")
    add_model(repo, "mobilenet", mobilenet, version="1")  # older versions are not served
    add_model(repo, "gru", gru, config="""
name: "gru"
backend: "onnxruntime"
max_batch_size: 0
input [ { name: "input" data_type: TYPE_FP32 dims: [ -1, -1, 64 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ -1, -1, 128 ] },
         { name: "h_n" data_type: TYPE_FP32 dims: [ 2, -1, 128 ] } ]
""")
    rng = np.random.default_rng(1)
    x = rng.random((2, 3, 224, 224), dtype=np.float32)
    seq = rng.standard_normal((1, 5, 64)).astype(np.float32)
    want_m = kiln_run(mobilenet, {"input": x}, tmp_path)["output"]
    want_g = kiln_run(gru, {"input": seq}, tmp_path)
    with serve(repo) as s:
        m = get_json(s, "/v2/models/mobilenet")
        assert m["versions"] == ["3"] and m["inputs"][0]["shape"] == [-1, 3, 224, 224]
        config = get_json(s, "/v2/models/mobilenet/config")
        assert config["max_batch_size"] == 4 and config["instance_group"][0]["count"] == 2
        assert config["dynamic_batching"]["preferred_batch_size"] == [2, 4]
        assert config["dynamic_batching"]["default_queue_policy"]["max_queue_size"] == 16
        assert config["kiln"]["threads_per_instance"] == 1  # 2 threads, 2 instances
        _, outs = infer(s, "mobilenet", [("input", "FP32", x)], binary=True, binary_outputs=True)
        np.testing.assert_allclose(outs["output"], want_m, rtol=1e-4, atol=1e-4)
        _, outs = infer(s, "gru", [("input", "FP32", seq)], binary=True)
        for name in ("output", "h_n"):
            np.testing.assert_allclose(outs[name], want_g[name], rtol=1e-4, atol=1e-5)
        assert get_json(s, "/v2/models/gru")["inputs"][0]["shape"] == [-1, -1, 64]


def test_bad_config_is_reported_and_others_serve(repo, tmp_path):
    bad = tmp_path / "badconfig"
    add_model(bad, "digits", DIGITS)
    add_model(bad, "typo", DIGITS, config="max_batch_size: 8\ninput [ { name: \"image\" data_type: TYPE_FP32 dims: [1, 8] } ]\n")
    add_model(bad, "syntax", DIGITS, config="max_batch_size: {{\n")
    with serve(bad) as s:
        index = {m["name"]: m for m in get_json(s, "/v2/repository/index", "POST")}
        assert index["digits"]["state"] == "READY"
        assert "dims" in index["typo"]["reason"] and "config.pbtxt" in index["typo"]["reason"]
        assert "config.pbtxt:1" in index["syntax"]["reason"]
        infer(s, "digits", [("image", "FP32", SAMPLES[:1])])


def test_request_size_limit_is_413(repo):
    with serve(repo, "--max-request-bytes", "4096") as s:
        x = np.random.default_rng(2).random((8, 1, 8, 8), dtype=np.float32)
        body, headers = infer_body([("image", "FP32", x)])
        assert len(body) > 4096
        status, _, data = request(s, "POST", "/v2/models/digits/infer", body, headers)
        assert status == 413 and "4096" in json.loads(data)["error"]
        infer(s, "digits", [("image", "FP32", SAMPLES[:1])], binary=True)


def test_full_queue_answers_503_with_retry_after(repo):
    with serve(repo, "--max-queue-size", "1", "--threads", "1") as s:
        statuses, retry = [], []
        big = np.repeat(SAMPLES[:8], 1, axis=0)

        def client():
            for _ in range(20):
                body, headers = infer_body([("image", "FP32", big)], binary=True)
                code, h, _ = request(s, "POST", "/v2/models/digits/infer", body, headers)
                statuses.append(code)
                if code == 503:
                    retry.append(h.get("Retry-After"))

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(statuses) <= {200, 503} and 200 in statuses
        assert 503 in statuses, "a queue of 1 with 16 clients never overflowed"
        assert all(r == "1" for r in retry)


def test_request_timeout_in_the_queue(repo):
    with serve(repo, "--threads", "1", "--max-queue-delay-us", "0") as s:
        x = np.zeros((8, 1, 8, 8), np.float32)
        codes = []

        def client(timeout_us):
            body, headers = infer_body([("image", "FP32", x)], binary=True, parameters={"timeout": timeout_us})
            codes.append(request(s, "POST", "/v2/models/digits/infer", body, headers)[0])

        # A backlog, then requests that may wait at most 1 microsecond.
        threads = [threading.Thread(target=client, args=(t,)) for t in [0] * 16 + [1] * 16]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(codes) <= {200, 503} and codes.count(200) >= 16


def test_auth_token(repo, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with serve(repo, "--auth-token-file", str(token)) as s:
        assert request(s, "GET", "/v2/health/ready")[0] == 200  # probes need no token
        status, _, data = request(s, "GET", "/v2/models/digits")
        assert status == 401 and "Bearer" in json.loads(data)["error"]
        assert request(s, "GET", "/v2/models/digits", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert request(s, "GET", "/v2/models/digits", headers={"Authorization": "Bearer s3cret"})[0] == 200


def test_slow_and_idle_clients_do_not_block_others(repo):
    with serve(repo, "--read-timeout-ms", "1000") as s:
        slow = []
        for _ in range(64):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            slow.append(c)
        t0 = time.time()
        infer(s, "digits", [("image", "FP32", SAMPLES[:1])])
        assert time.time() - t0 < 1.0, "a request waited behind slow clients"
        # The server gives up on them after the read timeout (408 or a close).
        time.sleep(1.5)
        for c in slow:
            c.settimeout(5)
            data = c.recv(4096)
            assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
            c.close()


def test_malformed_http_is_400(server):
    c = socket.create_connection(("127.0.0.1", server.port))
    c.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    c.settimeout(10)
    assert c.recv(4096).startswith(b"HTTP/1.1 400")
    c.close()


def test_curl_json_and_binary(server, tmp_path):
    x = SAMPLES[5:6]
    want = kiln_run(DIGITS, {"image": x}, tmp_path)["logits"]
    body, _ = infer_body([("image", "FP32", x)])
    (tmp_path / "req.json").write_bytes(body)
    out = subprocess.run(["curl", "-sS", "--fail", "-X", "POST", "-H", "Content-Type: application/json",
                          "--data-binary", "@" + str(tmp_path / "req.json"),
                          f"http://127.0.0.1:{server.port}/v2/models/digits/infer"],
                         check=True, capture_output=True).stdout
    np.testing.assert_allclose(np.array(json.loads(out)["outputs"][0]["data"], np.float32).reshape(1, 10), want,
                               rtol=1e-5, atol=1e-6)
    body, headers = infer_body([("image", "FP32", x)], binary=True, binary_outputs=True)
    (tmp_path / "req.bin").write_bytes(body)
    r = subprocess.run(["curl", "-sS", "--fail", "-D", str(tmp_path / "headers"), "-X", "POST",
                        "-H", "Inference-Header-Content-Length: " + headers["Inference-Header-Content-Length"],
                        "--data-binary", "@" + str(tmp_path / "req.bin"),
                        f"http://127.0.0.1:{server.port}/v2/models/digits/infer"], check=True, capture_output=True)
    h = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in
                                               (tmp_path / "headers").read_text().splitlines()[1:] if ":" in line)}
    _, outs = decode_response(h, r.stdout)
    np.testing.assert_allclose(outs["logits"], want, rtol=1e-5, atol=1e-6)


def test_sigterm_drains_requests_in_flight(repo):
    with serve(repo, "--threads", "1") as s:
        x = np.zeros((8, 1, 8, 8), np.float32)
        codes, started = [], threading.Event()

        def client():
            for _ in range(200):
                body, headers = infer_body([("image", "FP32", x)], binary=True)
                started.set()
                try:
                    code = request(s, "POST", "/v2/models/digits_batched/infer", body, headers)[0]
                except (ConnectionError, http.client.HTTPException, OSError):
                    code = "refused"  # after the drain: the listener is closed
                codes.append(code)
                if code != 200:
                    return

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        started.wait()
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(30) == 0
        for t in threads:
            t.join()
        # Every request the server took was answered; later ones were refused
        # or told it is shutting down, never dropped mid-way.
        assert codes.count(200) > 0
        assert set(codes) <= {200, 503, "refused"}, set(codes)
        assert any("draining" in line for line in s.log) and "stopped" in s.log[-1]


def test_idle_server_burns_no_cpu(server):
    def cpu_ticks():
        with open(f"/proc/{server.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    infer(server, "digits", [("image", "FP32", SAMPLES[:1])])
    time.sleep(0.5)
    t0 = cpu_ticks()
    time.sleep(2)
    assert cpu_ticks() - t0 <= 2, "the idle server used CPU"  # ticks of 10 ms


def test_perf_client_reports_each_level(server):
    out = subprocess.run([KILN_CLI, "perf-client", "-m", "digits_batched", "-u", f"127.0.0.1:{server.port}",
                          "-c", "1,4", "-i", "json", "--duration-s", "0.5", "--warmup-s", "0.2", "--json"],
                         check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    assert report["model"] == "digits_batched" and report["format"] == "json"
    assert [level["concurrency"] for level in report["levels"]] == [1, 4]
    for level in report["levels"]:
        assert level["requests"] > 0 and level["errors"] == {}
        lat = level["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert level["server_avg_batch"] >= 1
    # With 4 clients and a 20 ms queue delay, requests are batched.
    assert report["levels"][1]["server_avg_batch"] > 1.5
    bad = subprocess.run([KILN_CLI, "perf-client", "-m", "nope", "-u", f"127.0.0.1:{server.port}"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "nope" in bad.stderr and "404" in bad.stderr
