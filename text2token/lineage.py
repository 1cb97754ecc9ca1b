"""Where a model's weights come from, as its card and mteb entry cite it: the original backbone's Hub id
and license, and the trained Text2Token model a stage started from (stage 2's stage 1).

A stage-2 run starts from a folder (the merged stage-1 model); its card names the backbone that folder
was trained from, read from the folder's own card or config, so every stage cites the same base model.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .backbones import EMBEDDED_ALIASES, EMBEDDED_HUB_ID, EMBEDDED_LICENSE, portable_backbone_name
from .cards import hub_repo_id

logger = logging.getLogger(__name__)
_CONVERTED_MARKER = "text2token-conversion.json"  # backbones' marker of the embedded default's conversion


@dataclass
class Lineage:
    base_model: str | None = None  # Hub id of the original backbone
    license: str | None = None
    language: str | list[str] | None = None
    datasets: list[str] = field(default_factory=list)  # corpora the parent stages were trained on
    parent: str | None = None  # portable name of the trained Text2Token model this one started from

    def name(self, fallback: str = "unknown") -> str:
        return self.base_model or fallback


def _card_data(readme: Path) -> dict:
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(readme).data.to_dict()
    except Exception as exc:  # a malformed card must not stop a save: the lineage is optional metadata
        logger.info("cannot read %s (%s): no lineage from it", readme, exc)
        return {}


def _first(value):
    return value[0] if isinstance(value, list) and value else value


def resolve_lineage(source: str | os.PathLike | None, *, fetch_card: bool = True) -> Lineage:
    """The lineage of weights loaded from `source` (a Hub id, a folder, or the embedded default's alias).
    `fetch_card=False` spares a Hub id's card download (its license and language) when the caller has them."""
    if not source:
        return Lineage()
    source = str(source)
    path = Path(source)
    if source in EMBEDDED_ALIASES or (path / _CONVERTED_MARKER).is_file():
        return Lineage(EMBEDDED_HUB_ID, EMBEDDED_LICENSE, "en")
    if path.is_dir():
        config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
        card = _card_data(path / "README.md") if (path / "README.md").is_file() else {}
        if config.get("model_type") == "text2token":  # a trained stage: cite what it was trained from
            upstream = resolve_lineage(card.get("base_model") and _first(card["base_model"])
                                       or (config.get("lm_config") or {}).get("_name_or_path"),
                                       fetch_card=fetch_card and not card.get("license"))
            datasets = list(card.get("datasets") or upstream.datasets)
            return Lineage(upstream.base_model, card.get("license") or upstream.license,
                           card.get("language") or upstream.language, datasets, portable_backbone_name(source))
        named = hub_repo_id(config.get("_name_or_path"))
        return Lineage(_first(card.get("base_model")) or named, card.get("license"), card.get("language"))
    if hub_repo_id(source):
        card = {}
        if fetch_card and not os.environ.get("HF_HUB_OFFLINE"):
            try:
                from huggingface_hub import ModelCard

                card = ModelCard.load(source).data.to_dict()
            except Exception as exc:  # unreachable or missing card: the id alone still names the base model
                logger.info("no card data for backbone %s (%s)", source, exc)
        return Lineage(source, card.get("license"), card.get("language"))
    return Lineage()
