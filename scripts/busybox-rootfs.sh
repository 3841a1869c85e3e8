#!/usr/bin/env bash
# Writes a busybox root filesystem as a tar stream to stdout, from Debian's busybox-static.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,tmp,root,home/berth,proc,sys,dev,var}
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
for a in $(/bin/busybox --list); do
  [ "$a" = busybox ] || ln -s busybox "$dir/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000:berth:/home/berth:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nberth:x:1000:\nextra:x:2000:berth\nnogroup:x:65534:\n' >"$dir/etc/group"
chown 1000:1000 "$dir/home/berth"
tar -C "$dir" --numeric-owner -cf - .
