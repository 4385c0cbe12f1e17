#!/bin/sh
# PID 1 of a VM member (docs/agent.md, "VM members"): brings up its virtio-net eth0 with the
# address the agent gave on the kernel command line, serves HTTP (busybox httpd) and, when
# given URLs, requests them in turn (busybox nc). `tacmesh.probe` only says it got here and
# powers off: that is how the agent learns whether KVM works.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
arg() {
  for a in $(cat /proc/cmdline); do
    case "$a" in "tacmesh.$1="*) echo "${a#*=}" ;; esac
  done
}
echo "tacmesh-vm: init reached"
if grep -q 'tacmesh.probe' /proc/cmdline; then poweroff -f; fi
# Each after what it needs (modules.dep: virtio_ring holds symbols virtio uses).
for m in virtio_ring virtio virtio_mmio failover net_failover virtio_net; do
  insmod "/lib/modules/$m.ko" || echo "tacmesh-vm: insmod $m failed"
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add "$(arg addr)" dev eth0
gw=$(arg gw)
[ -n "$gw" ] && ip route add default via "$gw"
httpd -p 80 -h /www
# One HTTP/1.1 GET of an http://host[:port]/path URL. By nc: the static busybox's wget
# crashes in glibc's static NSS (getservbyname) before it sends anything.
fetch() {
  rest=${1#http://}
  hostport=${rest%%/*}
  path=/${rest#*/}
  [ "$rest" = "$hostport" ] && path=/
  host=${hostport%%:*}
  port=${hostport#*:}
  [ "$port" = "$hostport" ] && port=80
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tacmesh-vm\r\nConnection: close\r\n\r\n' \
    "$path" "$hostport" | nc -w 2 "$host" "$port" >/dev/null 2>&1
}
urls=$(arg get | tr , ' ')
every=$(arg every)
if [ -n "$urls" ]; then
  (while :; do
    for u in $urls; do
      fetch "$u"
      sleep "${every:-1}"
    done
  done) &
fi
echo "tacmesh-vm: ready $(arg addr)"
while :; do sleep 3600; done
