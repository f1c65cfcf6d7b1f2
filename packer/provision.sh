#!/bin/sh
# Runs as root in the Packer build VM after the Debian installer: gives it the content of
# `ova-builder appliance`'s root filesystem (builder/src/appliance/rootfs.rs; a unit test there
# checks that the package list below matches its PACKAGES).
set -eu
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
apt-get install -y -q --no-install-recommends \
  linux-image-cloud-amd64 \
  systemd systemd-sysv systemd-resolved udev dbus kmod initramfs-tools \
  haproxy openssh-server iproute2 procps netbase open-vm-tools ca-certificates nftables \
  keepalived iputils-arping libssl3 util-linux mount

# The cloud kernel matches the virtual hardware (PVSCSI, VmxNet3); the installer's generic
# kernel goes, and so does ifupdown: systemd-networkd configures the NICs.
generic=$(dpkg-query -W -f '${Package}\n' 'linux-image-*' | grep -v cloud || true)
apt-get purge -y -q $generic ifupdown isc-dhcp-client 2>/dev/null || true
update-grub

install -m 0755 /tmp/haproxy-firstboot /usr/local/bin/haproxy-firstboot
install -m 0644 /tmp/units/haproxy-firstboot.service /usr/lib/systemd/system/
install -m 0644 /tmp/ssh-hostkeys.service /usr/lib/systemd/system/
# nftables.service loads the /etc/nftables.conf haproxy-firstboot writes (ordered before it);
# keepalived.service starts only on an HA pair's node (haproxy-firstboot writes its configuration).
systemctl enable haproxy-firstboot.service ssh-hostkeys.service systemd-networkd.service systemd-resolved.service nftables.service keepalived.service
if [ "${DATAPLANEAPI:-no}" = yes ]; then
  install -m 0644 /tmp/units/dataplaneapi.service /usr/lib/systemd/system/
else
  echo "provision: no Data Plane API binary given: this appliance has NO Data Plane API" >&2
fi
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf

apt-get -y -q autoremove --purge
apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/haproxy-firstboot /tmp/units /tmp/ssh-hostkeys.service
