#!/usr/bin/env bash
# One-step set-up of tacmesh on a Debian machine, as root: system packages, npm
# dependencies, eBPF objects, TypeScript build, and the `tacmesh` command on PATH.
# Idempotent: every step checks first and says what it does.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs Debian packages and loads eBPF programs)" >&2
  exit 1
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# Every Debian package whose programs tacmesh, its tests and its benches run. The program →
# package map is src/shared/programs.ts; test/project.test.ts checks the two agree (dpkg -S).
PACKAGES=(
  clang llvm libbpf-dev libbpf1 bpftool make   # eBPF build and the libbpf.so.1 the binding loads
  iproute2 iputils-ping procps util-linux mount # namespaces, links, tc, ss, nstat, sysctl, nsenter
  coreutils dash dpkg openssl systemd          # sh, head, dpkg-query, openssl, systemd-analyze
  python3-minimal                              # /usr/bin/python3: the QoS tests' DSCP receiver and paced sender
  babeld                                       # the testbed's mesh routing
  iperf3                                       # test and testbed traffic
  irtt                                         # the mesh benchmark's peer (bench/mesh)
  udpcast                                      # the diode benchmark's peer (udp-sender/udp-receiver)
  influxdb                                     # the paper's store: the tower's optional sink, its tests
  nats-server                                  # the towers' bus (NATS JetStream, docs/bus.md), its tests
  softflowd pmacct                             # the peers of bench/monitor
  nfdump                                       # IPFIX export test (nfcapd collects, nfdump reads)
  chromium                                     # the dashboard's end-to-end tests and bench (playwright-core)
  haproxy                                      # the L7 proxy bench/services measures tacmesh's golden signals against
  qemu-system-x86 linux-image-amd64            # VM members: QEMU microvm booting Debian's kernel
  busybox-static cpio gzip                     # the VM members' initramfs (scripts/vm/build-image.sh)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages: all ${#PACKAGES[@]} present"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci installs exactly the committed lock file and never rewrites it, so the clone
  # stays clean. The lock file lists every platform's optional packages (npm install on
  # one platform may leave the others out, and npm ci elsewhere then refuses it).
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
else
  say "npm dependencies: up to date"
fi

say "building eBPF objects (bpf/.output, vmlinux.h from /sys/kernel/btf/vmlinux)"
make -s -C bpf

say "generating wire-schema types (proto/ -> src/proto/gen)"
bash scripts/gen-proto.sh

say "building the VM members' initramfs (build/vm, kernel from /boot)"
bash scripts/vm/build-image.sh

say "building TypeScript (dist/)"
npx --no-install tsc -p tsconfig.build.json

say "building the dashboard (web/ -> web/dist, served by the tower at /)"
npm run --silent build:web

if [ "$(readlink -f /usr/local/bin/tacmesh 2>/dev/null)" != "$PWD/bin/tacmesh.js" ]; then
  say "linking /usr/local/bin/tacmesh -> $PWD/bin/tacmesh.js"
  ln -sf "$PWD/bin/tacmesh.js" /usr/local/bin/tacmesh
fi
say "ready: $(node bin/tacmesh.js --version) ($(uname -r), $(node --version))"
