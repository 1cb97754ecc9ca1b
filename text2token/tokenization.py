"""Turn raw texts into model inputs: prompt wrapping and truncation that never cuts the prompt."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import BatchEncoding, PreTrainedTokenizerBase


def replace_lone_surrogates(text: str) -> str | None:
    """`text` with lone UTF-16 surrogates (not encodable as UTF-8, so no tokenizer takes them) turned
    into U+FFFD, or None when there were none."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Many causal LMs ship without a pad token; padding slots are masked out, so EOS serves."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has neither a pad nor an EOS token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def combine_prompt(template: str | None, prompt: str | None) -> str | None:
    """The template a text is wrapped in when `prompt` (an instruction such as "query: ", or a template
    with `{text}`) is asked for on top of the model's own `template` (PromptEOL or None): a plain prefix
    goes in front of the text, inside the model's template; a template with `{text}` replaces it."""
    if not prompt:
        return template
    if "{text}" in prompt:
        return prompt
    return template.replace("{text}", prompt + "{text}", 1) if template else prompt + "{text}"


def tokenize_texts(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int,
    prompt: str | None = None,
) -> BatchEncoding:
    """Tokenize `texts` (wrapped in `prompt` if given) to padded tensors of at most `max_length` tokens.

    With a prompt, the text alone is shortened to the room the prompt leaves, so the end of the prompt
    (the words that last-token pooling reads) always survives truncation.
    """
    # An empty or whitespace-only text becomes the empty text: inside a prompt, the prompt alone; without
    # one, a stand-in special token alone. Zero tokens would pool to a zero vector, whose cosine
    # similarity is NaN.
    texts = [text if text.strip() else "" for text in texts]
    if prompt is not None:
        texts = _wrap_in_prompt(tokenizer, texts, prompt, max_length)
    elif "" in texts:
        texts = [text or empty_text_stand_in(tokenizer) for text in texts]
    return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def empty_text_stand_in(tokenizer: PreTrainedTokenizerBase) -> str:
    """The token that stands for an empty text without a prompt: BOS, else EOS, preferring one that is
    not the pad token (whose embedding row some models keep at zero, which would pool to a zero vector)."""
    candidates = [t for t in (tokenizer.bos_token, tokenizer.eos_token) if t is not None]
    if not candidates:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no BOS or EOS token to encode an empty text "
                         "with: drop empty texts")
    return next((t for t in candidates if t != tokenizer.pad_token), candidates[0])


def _cut(tokenizer, text: str, ids: list[int], room: int) -> str:
    """`text` cut to its first `room` tokens. A cut inside a multi-byte character decodes to U+FFFD,
    which the text never held: such trailing characters are dropped, so nothing is invented."""
    cut = tokenizer.decode(ids[:max(room, 0)])
    while cut.endswith("\ufffd") and not text.startswith(cut):
        cut = cut[:-1]
    return cut


def _wrap_in_prompt(tokenizer, texts: list[str], prompt: str, max_length: int) -> list[str]:
    prefix, suffix = prompt.split("{text}", 1)
    overhead = len(tokenizer(prefix + suffix)["input_ids"])
    if max_length - overhead < 1:
        raise ValueError(f"max_length={max_length} leaves no room for text after the {overhead}-token prompt")
    text_ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    room = [max_length - overhead] * len(texts)
    wrapped = list(texts)
    # Tokens can merge across the text/prompt boundary, so check the wrapped length and shrink the
    # text again where it still overflows (rarely more than one round).
    for _ in range(4):
        wrapped = [prefix + (text if len(ids) <= r else _cut(tokenizer, text, ids, r)) + suffix
                   for text, ids, r in zip(texts, text_ids, room)]
        lengths = [len(ids) for ids in tokenizer(wrapped)["input_ids"]]
        over = [i for i, n in enumerate(lengths) if n > max_length]
        if not over:
            break
        for i in over:
            room[i] = min(room[i], len(text_ids[i])) - (lengths[i] - max_length)
    else:
        # Still too long after four rounds (merges that keep shifting): the prompt alone fits, and its
        # end, which last pooling reads, must never be cut by the tokenizer's right truncation.
        for i in over:
            wrapped[i] = prefix + suffix
    return wrapped
