#!/usr/bin/env bash
# The prepared GPU check (see scripts/device_check.py): parity of the CUDA paths, then hybrid,
# hybrid-dedup, device and hotline at the reference DLRM config (batch 1024 and 4096) with
# samples/s, bytes per sample and the overlap achieved.  Finishes in under 8 minutes on one GPU.
#
#   scripts/device_check.sh OUTDIR [--device cuda|cpu|auto] [--tiny] [--budget-s S] [...]
#
# Needs only python3 with torch, numpy and pyyaml (matplotlib for the plots, optional); no
# network: when `hotline` does not import, the checkout is put on PYTHONPATH through a folder of
# symbolic links that lays it out as the installed package (pyproject's package-dir mapping).
# PYTHON picks the interpreter (default python3); DEVICE_CHECK_TIMEOUT (default 480 s) kills a
# run that hangs, leaving the JSON written so far.
set -u
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 OUTDIR [--device cuda|cpu|auto] [--tiny] [device_check.py options]" >&2
    exit 2
fi
out=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
# a relative interpreter path (.venv/bin/python) must survive the `cd /` of the import check
case $py in */*) py=$(cd "$(dirname "$py")" && pwd)/$(basename "$py") || exit 2;; esac
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
# import checks run from / : `python -c` puts the current folder first on sys.path, and the
# checkout's own hotline/ folder is not the package (host/ etc. map into it)
importable() { (cd / && "$py" -c "import hotline.host.trainer" 2>"$1"); }
if ! importable /dev/null; then
    farm=$(mktemp -d "${TMPDIR:-/tmp}/hotline-pkg.XXXXXX") || exit 2
    trap 'rm -rf "$farm"' EXIT          # removes the links, not what they point to
    mkdir -p "$farm/hotline"
    for f in "$root"/hotline/*.py; do ln -s "$f" "$farm/hotline/"; done
    for d in host rtl testbench fpga; do [ -d "$root/$d" ] && ln -s "$root/$d" "$farm/hotline/$d"; done
    export PYTHONPATH="$farm${PYTHONPATH:+:$PYTHONPATH}"
    if ! importable "$out/import_error.txt"; then
        echo "device_check: cannot import hotline (see $out/import_error.txt)" >&2
        exit 2
    fi
fi
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
timeout -k 10 "${DEVICE_CHECK_TIMEOUT:-480}" "$py" "$root/scripts/device_check.py" --out "$out" "$@" \
    2>&1 | tee "$out/device_check.log"
exit "${PIPESTATUS[0]}"
