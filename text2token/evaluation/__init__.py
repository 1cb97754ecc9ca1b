"""Offline evaluation: mteb 2.x tasks on frozen public-text snapshots, an mteb
encoder wrapper for any embedder, baselines, and a table-producing runner.

Submodules are imported explicitly (``from text2token.evaluation.suite import
run_offline_suite``) so that importing the package does not pull in mteb.
"""


def model_meta(source, **kwargs):
    """mteb's ``ModelMeta`` of a saved Text2Token model (folder or Hub id); see
    :func:`text2token.evaluation.mteb_meta.model_meta`. Imported on call: mteb loads only when used."""
    from .mteb_meta import model_meta as build

    return build(source, **kwargs)
