"""Type stubs of kiln's C++ extension (python/kiln_module.cpp). Use the
kiln package's API (kiln.InferenceSession, kiln.build_engine, ...)."""

from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

class Error(RuntimeError):
    """Any error kiln reports; the classes below are kinds of it."""

class InvalidModel(Error):
    """A model or engine file kiln cannot read (the message names it)."""

class InvalidArgument(Error):
    """A bad feed or argument: an unknown input or output name, a wrong
    type, rank or dim (the message names the input, expected and given)."""

class UnsupportedOpError(InvalidModel):
    """A model with ops kiln does not implement (the message lists them)."""

def version() -> str: ...
def build_info() -> Dict[str, Any]: ...

class Session:
    def __init__(
        self,
        model: Union[str, bytes, bytearray, memoryview, PathLike],
        threads: int = 0,
        opt_level: int = 2,
        input_shapes: Optional[Dict[str, Sequence[int]]] = None,
        profile: int = -1,
        memory_planner: bool = True,
        disabled_passes: Sequence[str] = ...,
        cast_inputs: bool = False,
    ) -> None: ...
    def run(self, output_names: Optional[Sequence[str]], feed: Dict[str, Any]) -> List[np.ndarray]: ...
    def inputs(self) -> List[Tuple[str, str, Optional[List[Union[int, str, None]]]]]: ...
    def outputs(self) -> List[Tuple[str, str, Optional[List[Union[int, str, None]]]]]: ...
    def producer(self) -> str: ...
    def ir_version(self) -> int: ...
    def opsets(self) -> Dict[str, int]: ...
    def is_engine(self) -> bool: ...
    def profiles(self) -> List[str]: ...
    def model_bytes(self) -> bytes: ...
    def _feed_addresses(self, feed: Dict[str, Any]) -> List[int]: ...

def build_engine(
    onnx_path: str,
    engine_path: str,
    shapes: Optional[Dict[str, Sequence[int]]] = None,
    min_shapes: Optional[Dict[str, Sequence[int]]] = None,
    opt_shapes: Optional[Dict[str, Sequence[int]]] = None,
    max_shapes: Optional[Dict[str, Sequence[int]]] = None,
    threads: int = 0,
    opt_level: int = 2,
    time_tactics: bool = True,
    timing_cache: str = "",
) -> Dict[str, Any]: ...
def load_weights(path: str) -> Dict[str, np.ndarray]: ...
def diff(got: np.ndarray, want: np.ndarray, rtol: float = 1e-3, atol: Optional[float] = None) -> Dict[str, Any]: ...
def inspect_json(path: str, input_shapes: Optional[Dict[str, Sequence[int]]] = None, optimized: bool = False) -> str: ...
