"""Text2Token: unsupervised text embeddings from a causal LM trained to predict token targets."""

from transformers import AutoConfig, AutoModel

from .adapters import LoraSettings
from .configuration import PROMPT_EOL, Text2TokenConfig
from .losses import TokenTargetKLLoss
from .modeling import Text2TokenModel, Text2TokenOutput

__version__ = "0.1.0"

AutoConfig.register(Text2TokenConfig.model_type, Text2TokenConfig, exist_ok=True)
AutoModel.register(Text2TokenConfig, Text2TokenModel, exist_ok=True)

__all__ = [
    "PROMPT_EOL",
    "LoraSettings",
    "Text2TokenConfig",
    "Text2TokenModel",
    "Text2TokenOutput",
    "TokenTargetKLLoss",
]
