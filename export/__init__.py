"""Export zoo models: ONNX (unrolled or streaming, self-describing, verified) and NIR."""
from .onnx import export_onnx
from .streaming import StreamingNet
from .verify import verify_onnx

__all__ = ["StreamingNet", "export_nir", "export_onnx", "verify_onnx"]


def __getattr__(name: str):
    if name == "export_nir":  # needs the optional `nir` extra
        from .nir import export_nir

        return export_nir
    raise AttributeError(f"module 'snnzoo.export' has no attribute {name!r}")
