#!/usr/bin/env bash
# One-command set-up and run for deepcluster_sk.
#
#   bash scripts/dev.sh demo   # set up .venv if needed, install, run the demo on digits
#   bash scripts/dev.sh test   # same set-up, run the test suite
#
# Set-up: a virtual environment in .venv (override with VENV=...), PyTorch
# first (the CPU build where no NVIDIA GPU is visible, so pip never pulls the
# CUDA packages; TORCH_VERSION and TORCH_INDEX_URL override the choice), then
# this package with its test extra. Re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

task="${1:-}"
case "$task" in
  demo|test) shift ;;
  *) echo "usage: bash scripts/dev.sh {demo|test} [extra args]" >&2; exit 2 ;;
esac

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
pip_install() { "$py" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$py" -c "import torch" >/dev/null 2>&1; then
  torch_args=("torch==$TORCH_VERSION")
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    torch_args+=(--index-url "$TORCH_INDEX_URL")
  elif ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "No NVIDIA GPU visible: installing the CPU build of torch $TORCH_VERSION" >&2
  fi
  pip_install "${torch_args[@]}"
fi
# torch is installed first and satisfies the package's range, so nothing
# here can pull a second (CUDA) build of it.
pip_install -e ".[test,plot,docs,dask,scale,imaging,distributed]"

case "$task" in
  demo) exec "$py" -m deepcluster_sk.demo "$@" ;;
  test) exec "$py" -m pytest "$@" ;;
esac
