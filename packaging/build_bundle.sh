#!/usr/bin/env bash
# Build the one-folder Linux bundle dist/vitgallery/ (and dist/vitgallery-VERSION-linux-ARCH.tar.gz),
# then smoke-test it (packaging/smoke_test_bundle.py). Not part of CI's default run: it takes minutes.
#
#   packaging/build_bundle.sh                    # CPU torch and torchvision from PyTorch's CPU index
#   TORCH_WHEEL=/path/torch-X+cpu-....whl packaging/build_bundle.sh   # offline: a local CPU torch wheel
#   SMOKE_WEIGHTS=dinov2_vits14_pretrain.pth packaging/build_bundle.sh   # smoke-test the real model too
#
# The bundle carries a CPU-only torch: PyPI's default torch would add gigabytes of CUDA libraries.
# Environment: BUNDLE_VENV (the build venv, default build/bundle-venv, reused when it exists),
# TORCH_INDEX_URL (default https://download.pytorch.org/whl/cpu), TORCH_WHEEL, TORCHVISION_REQUIREMENT
# (with TORCH_WHEEL; default: the torchvision release made for that torch, from PyPI), SMOKE_WEIGHTS,
# PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
venv=${BUNDLE_VENV:-build/bundle-venv}
py="$venv/bin/python"

if [ ! -x "$py" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
if ! "$py" -c "import torch, sys; sys.exit(torch.version.cuda is not None)" 2>/dev/null; then
    if [ -n "${TORCH_WHEEL:-}" ]; then
        "$py" -m pip install -q "$TORCH_WHEEL"
        if [ -z "${TORCHVISION_REQUIREMENT:-}" ]; then
            # torchvision 0.N+15 is made for torch 2.N (0.28 for 2.13, 0.29 for 2.14)
            minor=$("$py" -c "import torch; print(int(torch.__version__.split('.')[1]) + 15)")
            TORCHVISION_REQUIREMENT="torchvision==0.$minor.*"
        fi
        # --no-deps: PyPI's torchvision would pull PyPI's CUDA torch over the CPU one
        "$py" -m pip install -q --no-deps "$TORCHVISION_REQUIREMENT"
    else
        "$py" -m pip install -q torch torchvision --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
    fi
fi
# torch and torchvision are in place, so this adds no CUDA; the heif extra brings HEIC and AVIF.
"$py" -m pip install -q ".[heif]" "pyinstaller>=6.10"
"$py" -c "import torch, sys; sys.exit('the build venv holds a CUDA torch' if torch.version.cuda else 0)"

"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/vitgallery.spec
cp packaging/install-desktop-entry.sh dist/vitgallery/
# torch, Python and hnswlib ship their libraries with symbols (about 130 MB); the smoke test below runs
# the stripped ones. Not the libraries auditwheel copied into wheels (PyInstaller's strip breaks those).
if command -v strip >/dev/null; then
    internal=dist/vitgallery/_internal
    strip --strip-unneeded "$internal"/torch/lib/*.so* "$internal"/libpython3*.so* \
        "$internal"/python3*/lib-dynload/*.so "$internal"/hnswlib*.so
fi
built=$(date +%s)

version=$("$py" -c "import vitgallery; print(vitgallery.__version__)")
archive="dist/vitgallery-$version-linux-$(uname -m).tar.gz"
tar -C dist -czf "$archive" vitgallery
echo "bundle: dist/vitgallery ($(du -sh dist/vitgallery | cut -f1) on disk), archive: $archive ($(du -h "$archive" | cut -f1))"
echo "built in $((built - started)) s"

smoke=(dist/vitgallery/vitgallery)
if [ -n "${SMOKE_WEIGHTS:-}" ]; then
    smoke+=(--weights "$SMOKE_WEIGHTS")
fi
"$py" packaging/smoke_test_bundle.py "${smoke[@]}"
echo "built and checked in $(($(date +%s) - started)) s"
