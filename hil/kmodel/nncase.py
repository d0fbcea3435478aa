"""Compile real small models to kmodel v5 for the K210 with nncase 1.9 (optional extra).

Recipe (checked against nncase 1.9's Python API and its k210 target): build the ONNX graph at opset 11 / IR version 6, run ONNX
shape inference first (nncase's importer needs every value's shape), then CompileOptions(target
'k210', quant_type 'uint8'), import_onnx, use_ptq with float32 calibration samples, compile,
gencode_tobytes. nncase 1.x wheels exist for CPython <= 3.10 only; nncase 2.x dropped the K210.

Two models: ``conv_relu`` (3x3 conv + ReLU on a 1x3x16x16 input) and ``classifier`` (two convs,
global average pool, flatten, fully connected 10 classes, softmax on a 1x3x32x32 input). Weights and
calibration data come from numpy's seeded generator, so a (model, seed) pair compiles to the same
bytes with the same nncase.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from hil.errors import HilError

EXTRA_HINT = "pip install 'k210-hil[nncase]' (nncase 1.9 wheels exist for Python 3.10 and older only)"


class NncaseUnavailable(HilError):
    """nncase, onnx or numpy is missing: kmodel v5 models cannot be compiled here."""


class NncaseCompileError(HilError):
    """nncase refused or failed to compile a model."""


def _modules() -> tuple[Any, Any, Any]:
    try:
        import numpy as np
        import onnx
        import nncase
    except ImportError as exc:
        raise NncaseUnavailable(f"kmodel v5 needs {exc.name or 'nncase'} "
                                f"(Python {sys.version_info.major}.{sys.version_info.minor}): "
                                f"{EXTRA_HINT}") from exc
    return np, onnx, nncase


def available() -> bool:
    try:
        _modules()
    except NncaseUnavailable:
        return False
    return True


def nncase_version() -> str:
    """The installed nncase distribution version (the module has no __version__)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("nncase")
    except PackageNotFoundError:
        raise NncaseUnavailable(f"nncase is not installed: {EXTRA_HINT}") from None


# ---------------------------------------------------------------------------------------------
# ONNX models
def _finish(onnx: Any, graph: Any) -> bytes:
    helper = onnx.helper
    model = helper.make_model(graph, producer_name="k210-hil",
                              opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def conv_relu_onnx(seed: int = 0) -> bytes:
    np, onnx, _ = _modules()
    h, nh = onnx.helper, onnx.numpy_helper
    rng = np.random.default_rng(seed)
    w = nh.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w")
    b = nh.from_array((rng.standard_normal(8) * 0.1).astype(np.float32), "b")
    graph = h.make_graph(
        [h.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         h.make_node("Relu", ["c"], ["y"])],
        "conv_relu",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 16, 16])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8, 16, 16])], [w, b])
    return _finish(onnx, graph)


def classifier_onnx(seed: int = 0) -> bytes:
    np, onnx, _ = _modules()
    h, nh = onnx.helper, onnx.numpy_helper
    rng = np.random.default_rng(seed)

    def t(name: str, shape: tuple[int, ...], scale: float) -> Any:
        return nh.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [t("w1", (16, 3, 3, 3), 0.3), t("b1", (16,), 0.1), t("w2", (32, 16, 3, 3), 0.1),
             t("b2", (32,), 0.1), t("fw", (32, 10), 0.2), t("fb", (10,), 0.1)]
    nodes = [
        h.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c1"], ["r1"]),
        h.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c2"], ["r2"]),
        h.make_node("GlobalAveragePool", ["r2"], ["g"]),
        h.make_node("Flatten", ["g"], ["f"], axis=1),
        h.make_node("MatMul", ["f", "fw"], ["m"]),
        h.make_node("Add", ["m", "fb"], ["logits"]),
        h.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = h.make_graph(nodes, "classifier",
                         [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])], inits)
    return _finish(onnx, graph)


@dataclass(frozen=True)
class SourceModel:
    name: str
    make_onnx: Callable[[int], bytes]
    input_shape: tuple[int, ...]
    description: str


MODELS: dict[str, SourceModel] = {
    "conv_relu": SourceModel("conv_relu", conv_relu_onnx, (1, 3, 16, 16),
                             "ONNX Conv 3x3 (3->8) + Relu, input 1x3x16x16"),
    "classifier": SourceModel("classifier", classifier_onnx, (1, 3, 32, 32),
                              "ONNX Conv+Relu x2, GlobalAveragePool, Flatten, MatMul+Add (10), "
                              "Softmax, input 1x3x32x32"),
}


# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """nncase's C++ core prints its progress on fd 1; keep it out of the caller's output."""
    fd = 1                      # the C library's stdout, whatever sys.stdout is right now
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    _flush_c_stdio()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        _flush_c_stdio()        # C++ iostreams write through C stdio, which buffers off a tty
        os.dup2(saved, fd)
        os.close(saved)


def _flush_c_stdio() -> None:
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def _scratch_cwd() -> Iterator[None]:
    """nncase's compile() writes kmodel_info.txt into the current directory; keep it out of the
    user's tree. chdir is process-wide, which is acceptable: compiles are short and synchronous."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="hil-nncase-") as scratch:
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(old)


def compile_onnx(model: bytes, input_shape: tuple[int, ...], samples: int = 2, seed: int = 0,
                 name: str = "<onnx>") -> bytes:
    """Compile ONNX bytes for target k210 with uint8 post-training quantisation -> kmodel v5."""
    np, _, nncase = _modules()
    rng = np.random.default_rng(seed + 1)
    calib = rng.random((samples, *input_shape[1:])).astype(np.float32)
    try:
        with _quiet_stdout(), _scratch_cwd():
            opts = nncase.CompileOptions()
            opts.target = "k210"
            opts.quant_type = "uint8"
            compiler = nncase.Compiler(opts)
            compiler.import_onnx(model, nncase.ImportOptions())
            ptq = nncase.PTQTensorOptions()
            ptq.samples_count = samples
            ptq.set_tensor_data(calib.tobytes())
            compiler.use_ptq(ptq)
            compiler.compile()
            return bytes(compiler.gencode_tobytes())
    except (RuntimeError, ValueError, TypeError) as exc:
        raise NncaseCompileError(f"nncase could not compile {name} for k210: {exc}") from exc


def compile_model(name: str, seed: int = 0) -> bytes:
    """One of MODELS compiled to kmodel v5."""
    try:
        src = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown nncase model {name!r} (known: {', '.join(MODELS)})") from None
    return compile_onnx(src.make_onnx(seed), src.input_shape, seed=seed, name=name)
