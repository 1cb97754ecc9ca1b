"""The README's "Fine-tune further with sentence-transformers" snippet runs, on the tiny test model, and the
fine-tuned folder still loads with AutoModel and SentenceTransformer with one set of vectors (issue 23)."""

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_readme_finetune_snippet_runs(tiny_model, tmp_path, monkeypatch):
    import text2token  # noqa: F401 (registers AutoModel)
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Fine-tune further with sentence-transformers", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'SentenceTransformer("outputs/smollm2-135m/stage2", trust_remote_code=True)' in snippet
    tiny_model.merge_lora()
    tiny_model.save_pretrained(tmp_path / "outputs" / "smollm2-135m" / "stage2")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet.replace("max_steps=100", "max_steps=2"), "README", "exec"), {})
    tuned = AutoModel.from_pretrained("outputs/finetuned/final")
    texts = ["a small boat", "a vessel for travel on water"]
    st = SentenceTransformer("outputs/finetuned/final", trust_remote_code=True)
    np.testing.assert_allclose(st.encode(texts), tuned.encode(texts), atol=1e-5)
    assert not np.allclose(tuned.encode(texts), tiny_model.encode(texts), atol=1e-4), "the steps changed nothing"
