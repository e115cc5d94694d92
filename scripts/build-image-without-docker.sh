#!/usr/bin/env bash
# Builds the Dockerfile into an image with buildah (no Docker daemon) on a machine that reaches
# Debian's packages and the npm registry but no container registry, then runs the image's CLI.
#
# The Dockerfile's base, node:<version>-bookworm-slim, cannot be pulled there, so a stand-in is
# made first: Debian bookworm (debootstrap, minbase), this machine's Node and npm in /usr/local,
# a `node` user (uid 1000) as in the official image, and this machine's CA bundle (for a TLS
# proxy in front of the npm registry). It is tagged with the official name, and the build runs
# with --pull=never, so nothing is asked of a container registry. NODE_VERSION is this machine's
# Node major version. The Dockerfile itself is used as it is.
#
#   sudo scripts/build-image-without-docker.sh [WORKDIR]     (default /tmp/credit-edge-image)
#
# TAG (default localhost/credit-edge:dev) names the image (Docker format: HEALTHCHECK is kept). Storage stays in WORKDIR (vfs driver,
# chroot isolation: no daemon, no overlay mounts). Not part of `npm test`: it downloads a Debian
# base system (about 200 MB) and takes a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/credit-edge-image}
tag=${TAG:-localhost/credit-edge:dev}

[ "$(id -u)" = 0 ] || { echo "build-image: needs root (debootstrap and chroot)" >&2; exit 1; }
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-image: installing ${missing[*]} from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian mirror apt already uses here.
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "build-image: no Debian mirror found in apt's sources; set DEBIAN_MIRROR" >&2; exit 1; }

node_bin=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
major=$(node -p 'process.versions.node.split(".")[0]')
rootfs=$work/rootfs
bh=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)

if [ ! -x "$rootfs/bin/sh" ]; then
  echo "build-image: debootstrap bookworm into $rootfs" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work.debootstrap.log" 2>&1 || { tail -5 "$work.debootstrap.log" >&2; exit 1; }
fi
mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules" "$rootfs/etc/ssl/certs"
cp "$node_bin" "$rootfs/usr/local/bin/node"
rm -rf "$rootfs/usr/local/lib/node_modules/npm"
cp -r "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" sh -c 'id node >/dev/null 2>&1 || useradd -m -u 1000 -s /bin/sh node'

base="docker.io/library/node:${major}-bookworm-slim"
echo "build-image: stand-in base $base (Node $(node --version))" >&2
ctr=$("${bh[@]}" from scratch)
"${bh[@]}" copy "$ctr" "$rootfs" / >/dev/null
"${bh[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$ctr"
"${bh[@]}" commit -q "$ctr" "$base" >/dev/null
"${bh[@]}" rm "$ctr" >/dev/null

echo "build-image: buildah bud -t $tag (the Dockerfile, NODE_VERSION=$major)" >&2
"${bh[@]}" bud -q --format docker --pull=never --isolation chroot --network host --build-arg "NODE_VERSION=$major" -t "$tag" . >/dev/null

# What an operator meets first, inside the image, as its user, with its environment.
ctr=$("${bh[@]}" from "$tag")
trap '"${bh[@]}" rm "$ctr" >/dev/null' EXIT
inside() { "${bh[@]}" run --isolation chroot --network host --user node --workingdir /app "$ctr" -- "$@"; }
inside node --min-semi-space-size=16 dist/src/cli.js --help >/dev/null
if inside node dist/src/cli.js check-config config/credit-edge.example.yaml 2>/dev/null; then
  echo "build-image: the example config was accepted with NODE_ENV=production: it must not be" >&2
  exit 1
fi
inside sh -c 'test ! -e dist/src/dev && test ! -e node_modules/typescript'
"${bh[@]}" images --filter "reference=$tag"
echo "build-image: $tag built; its CLI runs, refuses the development config in production, and holds no development code" >&2
