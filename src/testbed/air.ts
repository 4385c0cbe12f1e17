/**
 * The air of one radio link: a namespace between the two ends whose forwarder carries every
 * frame across after the link's delay, as a radio's latency (this kernel has no netem, and
 * no fq to pace by timestamps). Frames are read and written with their virtio-net header
 * (PACKET_VNET_HDR), so a GSO packet crosses as one and is segmented, and checksummed,
 * where it leaves. A FIFO per direction: order is kept. `link set --rate` puts a TBF on the
 * way out of each side (tc applies to what the forwarder sends), `link cut` and loss stay
 * with linkem on the nodes.
 */
/** python3 -c FORWARDER <ifA> <ifB> <delay ms> */
export const FORWARDER = `
import heapq, select, socket, sys, time
SOL_PACKET, PACKET_VNET_HDR, PACKET_OUTGOING, ETH_P_ALL = 263, 15, 4, 3
a, b, delay = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000
def open_(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((name, 0))
    s.setblocking(False)
    return s
sa, sb = open_(a), open_(b)
other = {sa: sb, sb: sa}
queue, n = [], 0
print("air", a, "<->", b, "delay", delay * 1000, "ms", flush=True)
while True:
    r, _, _ = select.select([sa, sb], [], [], max(0, queue[0][0] - time.monotonic()) if queue else None)
    now = time.monotonic()
    for s in r:
        while True:
            try:
                data, addr = s.recvfrom(70000)
            except BlockingIOError:
                break
            if addr[2] != PACKET_OUTGOING:
                n += 1
                heapq.heappush(queue, (now + delay, n, other[s], data))
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, out, data = heapq.heappop(queue)
        try:
            out.send(data)
        except OSError:
            pass  # dropped by the rate's queue, or the link is going: the air loses it
`;
