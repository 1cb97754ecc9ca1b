"""What a pushed training run uploads: the model files of one save, nothing else.

Trainer's own push uploads the whole output folder (the targets, i.e. the corpus text; model-derived
work shards; staging folders; a pickled `training_args.bin`; the completion marker). Here a push
uploads exactly the files the save's manifest lists (weights, configs, tokenizer, modeling files,
card), in one commit that also deletes weight files an earlier push left and this save does not have.
In-progress pushes upload a hard-linked snapshot of the checkpoint, so the background upload never
races the rename of the checkpoint into place or its rotation.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import RevisionNotFoundError

from .checkpointing import WEIGHT_PATTERNS, MANIFEST_FILE, model_file_paths, read_manifest, write_manifest

logger = logging.getLogger(__name__)

UPLOAD_PREFIX = ".hub-upload-"
# Never uploaded, whatever a manifest says: these load by unpickling.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def snapshot_model_files(folder: str, snapshot: str) -> str:
    """Hard-link (or copy, across file systems) the model files of `folder` into `snapshot`."""
    if os.path.exists(snapshot):
        shutil.rmtree(snapshot)
    for path in model_file_paths(folder):
        destination = os.path.join(snapshot, path)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        try:
            os.link(os.path.join(folder, path), destination)
        except OSError:
            shutil.copy2(os.path.join(folder, path), destination)
    write_manifest(snapshot, read_manifest(folder))
    return snapshot


def upload_model_files(folder: str, repo_id: str, *, token: str | None = None, revision: str | None = None,
                       commit_message: str = "Upload Text2Token model", commit_description: str | None = None):
    """One commit: the model files of the save in `folder`, minus any stale weight files in the repo."""
    paths = model_file_paths(folder)
    if not paths:
        raise FileNotFoundError(f"{folder} holds no saved model (no {MANIFEST_FILE} listing its files): "
                                "save the model before pushing it")
    pickles = [p for p in paths if p.endswith(PICKLE_SUFFIXES)]
    if pickles:
        logger.warning("not uploading %s: pickled files are never published", pickles)
    paths = [p for p in paths if p not in pickles]
    api = HfApi(token=token)
    try:
        existing = api.list_repo_files(repo_id, revision=revision)
    except RevisionNotFoundError:
        existing = []
    stale = [f for f in existing if f not in paths and any(fnmatch.fnmatch(f, p) for p in WEIGHT_PATTERNS)]
    operations = [CommitOperationAdd(p, os.path.join(folder, p)) for p in paths]
    operations += [CommitOperationDelete(f) for f in stale]
    return api.create_commit(repo_id, operations=operations, commit_message=commit_message,
                             commit_description=commit_description, revision=revision)


def upload_snapshot(snapshot: str, repo_id: str, **kwargs):
    """`upload_model_files`, then drop the snapshot (run in the background by the trainer)."""
    try:
        return upload_model_files(snapshot, repo_id, **kwargs)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
