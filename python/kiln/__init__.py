"""kiln: run ONNX models and kiln engines from Python.

A drop-in for onnxruntime's InferenceSession::

    import kiln as onnxruntime          # or: import kiln
    sess = onnxruntime.InferenceSession("model.onnx")
    x = sess.get_inputs()[0]
    outputs = sess.run(None, {x.name: image})

kiln also takes its engines (``kiln build``, or :func:`build_engine`) and has
a shorter call, ``sess({"image": image})``, which returns a dict of outputs.
Inputs are read in place (no copy) when they are C-contiguous numpy arrays of
the input's type; outputs are numpy arrays that own their memory.
"""

from __future__ import annotations

import enum
import os
import threading
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _kiln
from ._kiln import Error, InvalidArgument, InvalidModel, UnsupportedOpError

__version__: str = _kiln.version()

__all__ = [
    "Error",
    "GraphOptimizationLevel",
    "InferenceSession",
    "InvalidArgument",
    "InvalidModel",
    "ModelMetadata",
    "NodeArg",
    "RunOptions",
    "SessionOptions",
    "UnsupportedOpError",
    "build_engine",
    "compare",
    "get_available_providers",
    "get_device",
    "inspect",
    "load_weights",
]

_PROVIDER = "CPUExecutionProvider"


class GraphOptimizationLevel(enum.IntEnum):
    """onnxruntime's optimization levels, mapped to kiln's 0, 1 and 2."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


class SessionOptions:
    """Options of an :class:`InferenceSession`.

    onnxruntime's fields that mean something to kiln:

    - ``intra_op_num_threads``: threads of the session's pool, the calling
      thread included (0: the physical cores this process may use).
    - ``graph_optimization_level``: :class:`GraphOptimizationLevel`;
      ``ORT_DISABLE_ALL`` runs the graph as imported, ``ORT_ENABLE_BASIC``
      folds constants and shapes, the others also fuse (kiln's level 2).
    - ``enable_mem_pattern``: kiln's memory planner (one reused arena).

    Accepted and ignored, so that onnxruntime scripts run unchanged:
    ``inter_op_num_threads``, ``execution_mode``, ``log_severity_level``,
    ``enable_cpu_mem_arena``, ``enable_profiling``, ``optimized_model_filepath``.

    kiln's own:

    - ``input_shapes``: sizes for symbolic input dims, ``{"image": (1, 3, 224, 224)}``.
    - ``profile``: for an engine with several shape profiles, the one every
      run uses (-1: the one that fits the inputs, per run).
    - ``disabled_passes``: optimizer passes to skip, by name.
    - ``cast_inputs``: convert inputs of another numeric type (float64 for a
      float32 input) instead of raising :class:`InvalidArgument`; the
      conversion is a copy.
    """

    def __init__(self) -> None:
        self.intra_op_num_threads: int = 0
        self.inter_op_num_threads: int = 0
        self.graph_optimization_level: GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.enable_mem_pattern: bool = True
        self.enable_cpu_mem_arena: bool = True
        self.enable_profiling: bool = False
        self.execution_mode: Any = None
        self.log_severity_level: int = 2
        self.optimized_model_filepath: str = ""
        self.input_shapes: Dict[str, Sequence[int]] = {}
        self.profile: int = -1
        self.disabled_passes: List[str] = []
        self.cast_inputs: bool = False

    def _kiln_args(self) -> Dict[str, Any]:
        level = int(self.graph_optimization_level)
        return {
            "threads": int(self.intra_op_num_threads),
            "opt_level": 0 if level <= 0 else 1 if level == 1 else 2,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "profile": int(self.profile),
            "memory_planner": bool(self.enable_mem_pattern),
            "disabled_passes": list(self.disabled_passes),
            "cast_inputs": bool(self.cast_inputs),
        }


class RunOptions:
    """onnxruntime's RunOptions: accepted, nothing in it changes a kiln run."""

    def __init__(self) -> None:
        self.log_severity_level: int = 2
        self.run_tag: str = ""
        self.terminate: bool = False


class NodeArg:
    """An input or output: ``name``, ``type`` ("tensor(float)") and
    ``shape`` (ints for fixed dims, the symbol's name for named ones, None
    for unknown ones; None when even the rank is unknown)."""

    def __init__(self, name: str, type: str, shape: Optional[List[Union[int, str, None]]]) -> None:
        self.name = name
        self.type = type
        self.shape = shape

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


class ModelMetadata:
    """What onnxruntime's get_modelmeta() returns; kiln knows the producer."""

    def __init__(self, producer_name: str) -> None:
        self.producer_name = producer_name
        self.graph_name = ""
        self.graph_description = ""
        self.domain = ""
        self.description = ""
        self.version = 0
        self.custom_metadata_map: Dict[str, str] = {}


def get_available_providers() -> List[str]:
    """The execution providers kiln has: ``["CPUExecutionProvider"]``."""
    return [_PROVIDER]


def get_device() -> str:
    """The device kiln runs on: ``"CPU"``."""
    return "CPU"


def _check_providers(providers: Optional[Sequence[Any]]) -> None:
    if not providers:
        return
    names = [p[0] if isinstance(p, (tuple, list)) else p for p in providers]
    others = [n for n in names if n != _PROVIDER]
    if others:
        warnings.warn(f"kiln runs on the CPU; ignoring providers {others}", RuntimeWarning, stacklevel=3)


class InferenceSession:
    """A loaded model, ready to run; safe to run from several threads at once.

    ``path_or_bytes``: an ONNX model (``.onnx``) or a kiln engine
    (``.kiln``), as a path or as bytes. Raises :class:`InvalidModel` for a
    file kiln cannot read and :class:`UnsupportedOpError` for a model with
    ops kiln does not implement (the message lists them).
    """

    def __init__(
        self,
        path_or_bytes: Union[str, bytes, os.PathLike],
        sess_options: Optional[SessionOptions] = None,
        providers: Optional[Sequence[Any]] = None,
        provider_options: Optional[Sequence[Dict[str, Any]]] = None,
        **kwargs: Any,
    ) -> None:
        _check_providers(providers)
        self._options = sess_options or SessionOptions()
        self._session = _kiln.Session(path_or_bytes, **self._options._kiln_args())
        self._inputs = [NodeArg(*a) for a in self._session.inputs()]
        self._outputs = [NodeArg(*a) for a in self._session.outputs()]
        self._output_names = [o.name for o in self._outputs]

    def run(
        self,
        output_names: Optional[Sequence[str]],
        input_feed: Dict[str, Any],
        run_options: Optional[RunOptions] = None,
    ) -> List[Any]:
        """Runs the model; returns the outputs named in ``output_names``
        (None or []: all, in the model's order) as numpy arrays.

        ``input_feed`` maps input names to numpy arrays (or lists and
        scalars, converted to the input's type). An array of another type
        than the input's raises :class:`InvalidArgument` naming the input and
        both types, unless ``SessionOptions.cast_inputs`` is set. The GIL is
        released while the model runs.
        """
        return self._session.run(list(output_names) if output_names else None, input_feed)

    def __call__(self, input_feed: Dict[str, Any]) -> Dict[str, Any]:
        """Runs the model; returns ``{output name: numpy array}``."""
        return dict(zip(self._output_names, self._session.run(None, input_feed)))

    def run_async(
        self,
        output_names: Optional[Sequence[str]],
        input_feed: Dict[str, Any],
        callback: Callable[[Optional[List[Any]], Any, str], None],
        user_data: Any = None,
        run_options: Optional[RunOptions] = None,
    ) -> None:
        """Runs the model on another thread and calls
        ``callback(outputs, user_data, error)`` when done: ``outputs`` the
        list run() returns and ``error`` "" on success; ``outputs`` None and
        ``error`` the message on failure (as onnxruntime does)."""

        def work() -> None:
            try:
                result = self.run(output_names, input_feed, run_options)
            except Exception as e:  # noqa: BLE001 - handed to the callback, as onnxruntime does
                callback(None, user_data, str(e))
                return
            callback(result, user_data, "")

        threading.Thread(target=work, daemon=True).start()

    def get_inputs(self) -> List[NodeArg]:
        """The inputs to feed, in the model's order (initializers that are
        also graph inputs, which may be fed to override them, are not listed)."""
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        """The outputs, in the model's order."""
        return list(self._outputs)

    def get_overridable_initializers(self) -> List[NodeArg]:
        """onnxruntime's: kiln lists none (they may still be fed by name)."""
        return []

    def get_modelmeta(self) -> ModelMetadata:
        """The model's metadata (the producer, e.g. ``"pytorch 1.13.1"``)."""
        return ModelMetadata(self._session.producer())

    def get_providers(self) -> List[str]:
        """``["CPUExecutionProvider"]``."""
        return [_PROVIDER]

    def get_provider_options(self) -> Dict[str, Dict[str, str]]:
        return {_PROVIDER: {}}

    def get_session_options(self) -> SessionOptions:
        return self._options

    def set_providers(self, providers: Optional[Sequence[Any]] = None, provider_options: Any = None) -> None:
        _check_providers(providers)

    def end_profiling(self) -> str:
        """onnxruntime's; kiln's per-node profile is ``kiln profile MODEL``."""
        return ""

    @property
    def is_engine(self) -> bool:
        """Whether the session runs a kiln engine (.kiln)."""
        return self._session.is_engine()

    @property
    def profiles(self) -> List[str]:
        """An engine's shape profiles, ``"input:1x3x224x224..8x3x224x224 (opt 4x3x224x224)"``."""
        return self._session.profiles()

    # Pickling sends the model's bytes and the options: a session can go to
    # another process (multiprocessing, ProcessPoolExecutor).
    def __reduce__(self) -> Any:
        return (_unpickle_session, (self._session.model_bytes(), self._options.__dict__.copy()))


def _unpickle_session(model: bytes, options: Dict[str, Any]) -> InferenceSession:
    o = SessionOptions()
    o.__dict__.update(options)
    return InferenceSession(model, o)


def build_engine(
    onnx_path: Union[str, os.PathLike],
    engine_path: Union[str, os.PathLike],
    shapes: Optional[Dict[str, Sequence[int]]] = None,
    min_shapes: Optional[Dict[str, Sequence[int]]] = None,
    opt_shapes: Optional[Dict[str, Sequence[int]]] = None,
    max_shapes: Optional[Dict[str, Sequence[int]]] = None,
    threads: int = 0,
    opt_level: int = 2,
    time_tactics: bool = True,
    timing_cache: str = "",
) -> Dict[str, Any]:
    """Builds a kiln engine from an ONNX model (as ``kiln build`` does).

    ``shapes`` makes a static engine; ``min_shapes`` / ``opt_shapes`` /
    ``max_shapes`` a dynamic one whose inputs may take any shape in between
    (``opt_shapes`` defaults to ``max_shapes``). Returns the build's report:
    ``engine_bytes``, ``weight_bytes``, ``packed_bytes``, ``nodes``,
    ``seconds``, ``arena_bytes`` (per profile), ``tactics_timed``,
    ``tactics_cached``.
    """

    def named(s: Optional[Dict[str, Sequence[int]]]) -> Optional[Dict[str, List[int]]]:
        return None if s is None else {k: list(v) for k, v in s.items()}

    return _kiln.build_engine(
        os.fspath(onnx_path),
        os.fspath(engine_path),
        named(shapes),
        named(min_shapes),
        named(opt_shapes),
        named(max_shapes),
        threads,
        opt_level,
        time_tactics,
        timing_cache,
    )


def inspect(
    path: Union[str, os.PathLike],
    input_shapes: Optional[Dict[str, Sequence[int]]] = None,
    optimized: bool = False,
) -> Dict[str, Any]:
    """What ``kiln inspect --format json`` prints, as a dict (keys in
    docs/flops.md). For an ONNX model: ``ir_version``, ``producer``,
    ``opsets``, ``inputs``, ``outputs``, ``parameters``, ``op_histogram``,
    ``unsupported`` (each node kiln cannot run, with the reason), ``nodes``
    (per node: shapes, params, MACs, FLOPs; control-flow bodies too) and
    ``totals``. ``input_shapes`` fixes symbolic dims (all must end up known);
    ``optimized`` counts the graph after kiln's optimizer. For an engine:
    its header, ``profiles`` and the kernel each node runs."""
    import json

    shapes = None if input_shapes is None else {k: list(v) for k, v in input_shapes.items()}
    return json.loads(_kiln.inspect_json(os.fspath(path), shapes, optimized))


def compare(
    model: Union[str, bytes, os.PathLike, InferenceSession],
    input_feed: Dict[str, Any],
    reference: Union[str, Dict[str, Any], Callable[[Dict[str, Any]], Any]] = "kiln",
    rtol: float = 1e-3,
    atol: Optional[float] = None,
    sess_options: Optional[SessionOptions] = None,
) -> Dict[str, Any]:
    """Runs ``model`` on ``input_feed`` and compares each output with a
    reference, with the measures and rule of ``kiln compare``
    (docs/compare.md): ``max_abs``, ``max_rel``, ``rel_l2``, ``cosine``,
    ``failing`` elements, ``passed`` by numpy.allclose's rule (``atol``
    defaults to ``rtol`` times the largest finite |element| of each
    reference output).

    ``reference``: ``"kiln"`` (the same model with the optimizer off, which
    tells a fusion's error from the model's), a dict ``{output name:
    array}``, or a callable taking the feed and returning such a dict or a
    list in the model's output order (e.g. an onnxruntime session's
    ``lambda feed: ort.run(None, feed)``, or a PyTorch function). Returns
    ``{"passed": bool, "outputs": {name: measures}}``; outputs the reference
    does not have are not compared.
    """
    session = model if isinstance(model, InferenceSession) else InferenceSession(model, sess_options)
    got = session(input_feed)
    names = [o.name for o in session.get_outputs()]
    if isinstance(reference, str):
        if reference != "kiln":
            raise InvalidArgument(f"reference must be 'kiln', a dict of arrays or a callable, got {reference!r}")
        if session.is_engine:
            raise InvalidArgument("reference='kiln' would compare an engine with itself; give the reference "
                                  "outputs (a dict, or a callable such as an onnxruntime session's run)")
        o = SessionOptions()
        o.__dict__.update(session.get_session_options().__dict__)
        o.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
        want = InferenceSession(session._session.model_bytes(), o)(input_feed)
    elif callable(reference):
        result = reference(input_feed)
        want = result if isinstance(result, dict) else dict(zip(names, result))
    else:
        want = dict(reference)
    outputs = {}
    for name in names:
        if name in want:
            import numpy as np

            outputs[name] = _kiln.diff(got[name], np.asarray(want[name]), rtol, atol)
    if not outputs:
        raise InvalidArgument(f"the reference has none of the outputs {names}")
    return {"passed": all(o["passed"] for o in outputs.values()), "outputs": outputs}


def load_weights(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Reads the tensors of a PyTorch checkpoint (``torch.save``'s zip),
    ``.safetensors`` or ``.wts`` file, without PyTorch and without running
    pickle code: ``{name: numpy array}``, nested dicts flattened with dots
    ("model.fc.weight"). bfloat16 tensors come back as float32."""
    return _kiln.load_weights(os.fspath(path))
