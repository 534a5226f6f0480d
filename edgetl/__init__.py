"""edgetl: fine-tune pretrained models for the edge, export them and prove every step.

Python API (the CLI is a thin layer over these):

    import edgetl
    bundle = edgetl.finetune("builtin:digits", out="runs/digits", strategy="two-phase")
    bundle = edgetl.load_bundle("runs/digits")
    edgetl.predict_files(bundle, ["some.png"])
    text = edgetl.finetune("builtin:fortunes-lang", out="runs/lang", strategy="linear")
    edgetl.predict_texts(text, ["Das ist ein Satz."])
    speech = edgetl.finetune("builtin:keywords", out="runs/keywords", strategy="two-phase")
    edgetl.predict_audio(speech, ["clip.wav"])
"""

from .offline import enforce_offline

enforce_offline()  # before any hub client is imported

from .bundle import Bundle, load_bundle  # noqa: E402
from .errors import EdgetlError  # noqa: E402
from .predict import predict_audio, predict_files, predict_texts  # noqa: E402
from .train.config import FinetuneConfig  # noqa: E402
from .train.finetune import finetune  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Bundle", "EdgetlError", "FinetuneConfig", "finetune", "load_bundle", "predict_audio", "predict_files", "predict_texts", "__version__"]
