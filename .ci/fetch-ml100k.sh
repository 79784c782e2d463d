#!/usr/bin/env bash
# Fetch MovieLens-100K (RecBole atomic format) from the recbole==1.2.1 wheel on
# PyPI, verify its sha256 and extract it to
#   ${1:-${DTREC_DATA_DIR:-$HOME/.cache/dtrec}}/ml-100k/ml-100k.inter
# (the same rule as dtrec::data::ml100k_path when no argument is given).
# Idempotent: does nothing if the verified file is already there. Falls back
# to hopwise==0.9.1.post1, which ships the same file. The data's licence
# forbids redistribution: never commit the file.
# Needs python3 with pip; does not need unzip.
set -euo pipefail

SHA256=4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff
root=${1:-${DTREC_DATA_DIR:-$HOME/.cache/dtrec}}
dest_dir="$root/ml-100k"
dest="$dest_dir/ml-100k.inter"

verify() {
    [ -f "$1" ] && echo "$SHA256  $1" | sha256sum -c --status -
}

if verify "$dest"; then
    echo "ml-100k: $dest already present and verified"
    exit 0
fi

mkdir -p "$dest_dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# extract WHEEL_GLOB MEMBER: copy MEMBER of the downloaded wheel to $tmp/ml-100k.inter
extract() {
    python3 - "$1" "$2" "$tmp/ml-100k.inter" <<'PY'
import glob, sys, zipfile
wheels = glob.glob(sys.argv[1])
if len(wheels) != 1:
    sys.exit(f"expected one wheel matching {sys.argv[1]}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
}

fetch() { # fetch PACKAGE==VERSION WHEEL_GLOB MEMBER
    echo "ml-100k: downloading $1 from PyPI"
    python3 -m pip download --no-deps --only-binary :all: "$1" -d "$tmp" -q &&
        extract "$tmp/$2" "$3" &&
        verify "$tmp/ml-100k.inter"
}

if fetch recbole==1.2.1 'recbole-1.2.1-*.whl' recbole/dataset_example/ml-100k/ml-100k.inter ||
    fetch hopwise==0.9.1.post1 'hopwise-0.9.1.post1-*.whl' hopwise/dataset_example/ml-100k/ml-100k.inter; then
    # Atomic replace: a reader never sees a partial file.
    cp "$tmp/ml-100k.inter" "$dest.tmp.$$"
    mv -f "$dest.tmp.$$" "$dest"
    echo "ml-100k: wrote $dest (sha256 verified)"
else
    echo "ml-100k: download or verification failed (sha256 must be $SHA256)" >&2
    exit 1
fi
