#!/bin/bash
# demo.sh: the main job end to end on a local repository under ./demo/:
# init, back up a sample folder twice (the second run is incremental),
# list the snapshots, restore the latest and compare it with the source.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=$PWD/demo
export CAIRN_PASSWORD=${CAIRN_PASSWORD:-demo-password}
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$DEMO/cache}
rm -rf "$DEMO"
mkdir -p "$DEMO/sample"

# the sample: this project's sources, a larger binary file and a few special files
cp -a include repo-format agent README.md "$DEMO/sample/"
head -c 20000000 /dev/urandom >"$DEMO/sample/random.bin"
ln -s README.md "$DEMO/sample/readme-link"
mkdir -p "$DEMO/sample/empty-dir"

run() { echo "+ $*"; "$@"; }
run ./cairn -r "$DEMO/repo" init
run ./cairn -r "$DEMO/repo" backup "$DEMO/sample" --tag demo
echo "a change for the second run" >>"$DEMO/sample/README.md"
run ./cairn -r "$DEMO/repo" backup "$DEMO/sample" --tag demo
run ./cairn -r "$DEMO/repo" snapshots
run ./cairn -r "$DEMO/repo" restore latest --target "$DEMO/restore"
run ./cairn -r "$DEMO/repo" check
# absolute paths are kept whole in the snapshot, as restic keeps them
python3 tests/cli/treecmp.py "$DEMO/sample" "$DEMO/restore$DEMO/sample"
echo "demo: the restored copy in $DEMO/restore$DEMO/sample equals the source"
