#!/usr/bin/env bash
# Builds the initramfs of the VM members (docs/agent.md, "VM members") into build/vm/:
# busybox (static) as every program, the init in scripts/vm/init.sh, and the virtio modules
# of the Debian kernel the VMs boot. Reproducible: fixed times, sorted entries, gzip -n, so
# the same inputs give the same bytes; rebuilt only when an input changed. Never committed.
#   build/vm/vmlinuz        -> the kernel (/boot/vmlinuz-<version>, the linux-image package's)
#   build/vm/initramfs.img  the initramfs
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/vm
# The newest Debian kernel installed that has the virtio-net module.
version=""
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V); do
  v=${k#/boot/vmlinuz-}
  [ -e "/lib/modules/$v/kernel/drivers/net/virtio_net.ko" ] && version=$v
done
if [ -z "$version" ]; then
  echo "build-image: no Debian kernel with virtio_net in /boot and /lib/modules: apt-get install linux-image-amd64 (or run scripts/setup.sh)" >&2
  exit 1
fi
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
  echo "build-image: the VMs need a static busybox: apt-get install busybox-static (or run scripts/setup.sh)" >&2
  exit 1
fi
busybox=/bin/busybox
for p in cpio gzip; do
  command -v "$p" >/dev/null || { echo "build-image: $p is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
mods=(kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
  kernel/drivers/virtio/virtio_mmio.ko kernel/net/core/failover.ko
  kernel/drivers/net/net_failover.ko kernel/drivers/net/virtio_net.ko)
inputs=$( { echo "$version"; sha256sum "$0" scripts/vm/init.sh "$busybox" /boot/vmlinuz-"$version";
  for m in "${mods[@]}"; do sha256sum "/lib/modules/$version/$m"; done; } | sha256sum | cut -d' ' -f1)
if [ -e "$out/initramfs.img" ] && [ "$(cat "$out/inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "build-image: $out/initramfs.img is up to date (kernel $version)"
  exit 0
fi
mkdir -p "$out"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,tmp,www,lib/modules}
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
install -m 755 scripts/vm/init.sh "$root/init"
for m in "${mods[@]}"; do cp "/lib/modules/$version/$m" "$root/lib/modules/"; done
printf 'tacmesh VM member\n' >"$root/www/index.html"
printf 'ok\n' >"$root/www/status"
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
  gzip -9 -n >"$out/initramfs.img.tmp"
mv "$out/initramfs.img.tmp" "$out/initramfs.img"
ln -sfn "/boot/vmlinuz-$version" "$out/vmlinuz"
echo "$inputs" >"$out/inputs"
echo "build-image: $out/initramfs.img built ($(stat -c %s "$out/initramfs.img") bytes, kernel $version)"
