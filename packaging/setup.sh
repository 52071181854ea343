#!/usr/bin/env bash
# Create .venv and install vitgallery with its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -e '.[dev,heif]'
