"""Text2Token: unsupervised text embeddings from a causal LM trained to predict token targets."""

from transformers import AutoConfig, AutoModel

from .adapters import LoraSettings
from .configuration import PROMPT_EOL, Text2TokenConfig
from .losses import LOSSES, LossOutput, MNTPLoss, SimCSELoss, TokenTargetLoss
from ._version import __version__
from .modeling import Text2TokenModel, Text2TokenOutput

AutoConfig.register(Text2TokenConfig.model_type, Text2TokenConfig, exist_ok=True)
AutoModel.register(Text2TokenConfig, Text2TokenModel, exist_ok=True)
# Saved models also carry their modeling files and an `auto_map`, so `AutoModel.from_pretrained(path,
# trust_remote_code=True)` works without text2token; with it imported, the registration above wins
# and no remote code runs (trust_remote_code stays off).
Text2TokenConfig.register_for_auto_class()
Text2TokenModel.register_for_auto_class("AutoModel")

__all__ = [
    "__version__",
    "LOSSES",
    "LossOutput",
    "MNTPLoss",
    "PROMPT_EOL",
    "SimCSELoss",
    "LoraSettings",
    "Text2TokenConfig",
    "Text2TokenModel",
    "Text2TokenOutput",
    "TokenTargetLoss",
]
