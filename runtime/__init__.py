"""Event IO, binning and inference sessions; torch-free on the ONNX path.

``Predictor`` (batch inference on event files) is loaded on first use."""


def __getattr__(name: str):
    if name in ("Predictor", "Prediction"):
        from . import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'snnzoo.runtime' has no attribute {name!r}")
