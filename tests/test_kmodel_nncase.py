"""hil.kmodel.nncase: real ONNX models compiled to kmodel v5 for the K210 (skips without nncase)."""
from __future__ import annotations

import builtins

import pytest

from hil.errors import HilError
from hil.kmodel import nncase as nn
from hil.kmodel.format import parse_kmodel
from hil.kmodel.verdict import maixpy_load_error


def need_nncase() -> None:
    for mod in ("numpy", "onnx", "nncase"):
        pytest.importorskip(mod, reason=f"{mod} is not installed: {nn.EXTRA_HINT}")


@pytest.mark.parametrize("name", sorted(nn.MODELS))
def test_compile_to_v5(name: str, capfd) -> None:
    need_nncase()
    data = nn.compile_model(name, seed=0)
    info = parse_kmodel(data, name)
    assert info.version == 5 and info.modules == ("stackvm", "k210")
    assert info.file_size == info.model_size == len(data)
    assert info.inputs == 1 and info.outputs == 1
    assert maixpy_load_error(data, (3, 4)) == "version"   # MaixPy-v1 has no v5 loader
    assert "Generate code" not in capfd.readouterr().out  # nncase's progress kept quiet


def test_onnx_models_are_opset_11_ir_6_with_inferred_shapes() -> None:
    need_nncase()
    import onnx
    for name, src in nn.MODELS.items():
        model = onnx.load_from_string(src.make_onnx(0))
        assert model.ir_version == 6 and model.opset_import[0].version == 11
        assert len(model.graph.value_info) > 0, name     # shape inference ran


def test_version_is_reported() -> None:
    need_nncase()
    assert nn.nncase_version().startswith("1.9")


def test_missing_nncase_names_the_extra(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_nncase(name, *args, **kwargs):
        if name == "nncase":
            raise ImportError("No module named 'nncase'", name="nncase")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nncase)
    assert nn.available() is False
    with pytest.raises(nn.NncaseUnavailable) as exc:
        nn.compile_model("conv_relu")
    assert isinstance(exc.value, HilError)
    assert "k210-hil[nncase]" in str(exc.value) and "nncase" in str(exc.value)


def test_unknown_model() -> None:
    with pytest.raises(ValueError, match="unknown nncase model 'resnet'"):
        nn.compile_model("resnet")
