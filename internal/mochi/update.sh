#!/bin/sh
# update.sh rebuilds internal/mochi from mochi-mqtt v2.7.9 and the patch
# files in patches/, in order:
#
#  1. the module comes from the Go module cache (go mod download, in a
#     temporary module whose go.sum pins its hash; the network is used
#     only if the cache lacks it) and is checked with go mod verify;
#  2. the packages the broker uses are copied, with their tests: the root
#     package, packets, system, mempool, listeners (without tests) and
#     hooks/storage (not its bolt, badger, pebble and redis subpackages,
#     other hooks, config, cmd or examples), and LICENSE.md;
#  3. mechanical edits: import paths point here, and the tests' helper
#     newTestClient takes the test (its client stops when the test ends,
#     for goleak: patches/91);
#  4. patches/NN-*.patch are applied (patch -p1, no fuzz), in name order.
#
# Usage (from anywhere):
#
#	internal/mochi/update.sh          # rewrite the copy here
#	internal/mochi/update.sh --check  # exit 1 if the copy here differs
#
# Files of this directory that it leaves alone: README.md, update.sh and
# patches/. To change the copy, change or add a patch and run update.sh;
# to write a patch, run update.sh on a scratch copy (MOCHI_OUT=dir), edit,
# and diff. Needs go, patch and diff; runs offline once the module is in
# the module cache.
set -eu

module=github.com/mochi-mqtt/server/v2
version=v2.7.9
sum=h1:y0g4vrSLAag7T07l2oCzOa/+nKVLoazKEWAArwqBNYI=
modsum=h1:lZD3j35AVNqJL5cezlnSkuG05c0FCHSsfAKSPBOSbqc=
here_import=github.com/mqttkeep/mqttkeep/internal/mochi

here=$(cd "$(dirname "$0")" && pwd)
mode=write
case "${1:-}" in
--check) mode=check ;;
"") ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# 1. The module, verified against the pinned hash.
mkdir "$tmp/mod"
printf 'module mochiupdate\n\ngo 1.21\n\nrequire %s %s\n' "$module" "$version" >"$tmp/mod/go.mod"
printf '%s %s %s\n%s %s/go.mod %s\n' "$module" "$version" "$sum" "$module" "$version" "$modsum" >"$tmp/mod/go.sum"
download() {
	(cd "$tmp/mod" && GOFLAGS=-mod=mod go mod download "$@" "$module")
}
GOPROXY=off download 2>/dev/null || download
(cd "$tmp/mod" && GOPROXY=off GOFLAGS=-mod=mod go mod verify >/dev/null)
src="$(go env GOMODCACHE)/$module@$version"
[ -d "$src" ] || {
	echo "update.sh: $src missing after go mod download" >&2
	exit 1
}

# 2. What is copied.
out=${MOCHI_OUT:-$tmp/out}
rm -rf "$out"
mkdir -p "$out/hooks/storage"
cp "$src/LICENSE.md" "$out/"
for f in "$src"/*.go; do cp "$f" "$out/"; done
for d in packets system mempool; do
	mkdir "$out/$d"
	cp "$src/$d"/*.go "$out/$d/"
done
cp "$src/hooks/storage"/*.go "$out/hooks/storage/"
# The listeners, without their tests: the broker hands mochi its
# connections itself and registers no listener, and those tests listen on
# a fixed port (22222) of every interface.
mkdir "$out/listeners"
for f in "$src/listeners"/*.go; do
	case "$f" in
	*_test.go) ;;
	*) cp "$f" "$out/listeners/" ;;
	esac
done
chmod -R u+w "$out"

# 3. Mechanical edits.
find "$out" -name '*.go' | while read -r f; do
	sed -e "s#\"$module/#\"$here_import/#g" -e "s#\"$module\"#\"$here_import\"#g" "$f" >"$f.new"
	mv "$f.new" "$f"
done
for f in "$out"/*_test.go; do
	sed -e 's/^func newTestClient() (/func newTestClient(t testing.TB) (/' \
		-e 's/newTestClient()/newTestClient(t)/g' "$f" >"$f.new"
	mv "$f.new" "$f"
done

# 4. The patches.
for p in "$here"/patches/*.patch; do
	[ -e "$p" ] || continue
	if ! (cd "$out" && patch -p1 -F0 -s -t -i "$p"); then
		echo "update.sh: $(basename "$p") does not apply" >&2
		exit 1
	fi
done
left=$(find "$out" -name '*.orig' -o -name '*.rej')
if [ -n "$left" ]; then
	echo "update.sh: left over by patch: $left" >&2
	exit 1
fi

[ -z "${MOCHI_OUT:-}" ] || exit 0

# The copy here, without the files update.sh leaves alone.
own() {
	(cd "$1" && find . -type f ! -path ./README.md ! -path ./update.sh ! -path './patches/*' | LC_ALL=C sort)
}

if [ "$mode" = check ]; then
	if ! diff -r -u -x README.md -x update.sh -x patches "$out" "$here" >"$tmp/diff"; then
		sed "s#$out#upstream+patches#g; s#$here#internal/mochi#g" "$tmp/diff" | head -200 >&2
		echo "update.sh --check: internal/mochi differs from mochi $version + patches/" >&2
		exit 1
	fi
	echo "update.sh --check: internal/mochi is mochi $version + $(ls "$here"/patches/*.patch 2>/dev/null | wc -l | tr -d ' ') patches"
	exit 0
fi

own "$here" | while read -r f; do rm "$here/$f"; done
(cd "$out" && find . -type f) | while read -r f; do
	mkdir -p "$(dirname "$here/$f")"
	cp "$out/$f" "$here/$f"
done
find "$here" -type d -empty -delete
echo "update.sh: internal/mochi rewritten from mochi $version + patches/"
