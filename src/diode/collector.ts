/**
 * The receiver's packet collector: a UDP socket with a large receive buffer on the link,
 * frame checks, duplicate filtering and dispatch. It never sends on the link socket.
 *
 * Per datagram: too long → oversized; not a valid frame → counted by reason; then the
 * duplicate filter — by default the sequence window over the link sequence (catches copies
 * in any order, counts frames lost with all their copies), or the paper's Algorithm 1
 * (`dedup: adjacent`) for comparison — and the frame goes to its handler.
 *
 * Senders are told apart by epoch; a few are tracked at once (a restarted sender starts a
 * new one), and the least recently heard is dropped when a new one appears (the TCP proxy
 * then aborts its sessions: `silentMs` no longer knows it).
 */
import { createSocket, type Socket } from 'node:dgram';
import { log } from '../shared/log.js';
import type { RecvConfig } from './config.js';
import { AdjacentDuplicateFilter } from './dedup-adjacent.js';
import { SequenceWindow } from './dedup-window.js';
import { decodeFrame, type Frame, FrameType, type RejectReason } from './frame.js';
import { type ReceiveBufferReport, setReceiveBuffer } from './socket-options.js';
import { started } from './started.js';

export interface FrameHandlers {
  session(epoch: number, frame: Frame): void;
  udp(frame: Frame): void;
  heartbeat(epoch: number, frame: Frame, datagramsFromEpoch: number): void;
}

export interface CollectorCounters {
  datagrams: number;
  bytes: number;
  frames: number;
  rejected: Record<RejectReason | 'oversized', number>;
  duplicates: number;
  stale: number;
  /** Frames that never arrived in any copy (they left the window unseen). */
  lostFrames: number;
}

interface EpochState {
  window: SequenceWindow;
  datagrams: number;
  lastHeard: number;
}

const MAX_EPOCHS = 4;

export class Collector {
  private readonly socket: Socket;
  private readonly epochs = new Map<number, EpochState>();
  private readonly adjacent = new AdjacentDuplicateFilter();
  private lostInDroppedEpochs = 0;
  receiveBuffer: ReceiveBufferReport | undefined;
  readonly counters: CollectorCounters = {
    datagrams: 0,
    bytes: 0,
    frames: 0,
    rejected: { short: 0, magic: 0, version: 0, type: 0, flags: 0, truncated: 0, trailing: 0, oversized: 0 },
    duplicates: 0,
    stale: 0,
    lostFrames: 0,
  };

  constructor(
    private readonly config: RecvConfig,
    private readonly handlers: FrameHandlers,
  ) {
    this.socket = createSocket({ type: config.link.listen.host.includes(':') ? 'udp6' : 'udp4' });
    this.socket.on('message', (msg) => this.receive(msg));
    this.socket.on('error', (err) => log.error({ err: err.message }, 'link socket error'));
  }

  async start(): Promise<void> {
    const { listen, receiveBufferBytes } = this.config.link;
    await started(this.socket, (done) => this.socket.bind(listen.port, listen.host, done));
    this.receiveBuffer = setReceiveBuffer(this.socket, receiveBufferBytes);
    const rb = this.receiveBuffer;
    if (rb.short) {
      log.warn(
        { ...rb },
        `receive buffer is ${rb.effective} bytes, less than the ${rb.requested} asked for: net.core.rmem_max is ${rb.rmemMax} ` +
          `and SO_RCVBUFFORCE was refused (run as root, or raise it: sysctl -w net.core.rmem_max=${rb.requested}); ` +
          'a small buffer is the first cause of loss on a diode',
      );
    } else log.info({ ...rb }, 'receive buffer set');
  }

  /** Ms since a frame of `epoch` was last heard; undefined for an epoch no longer tracked. */
  silentMs(epoch: number): number | undefined {
    const state = this.epochs.get(epoch);
    return state ? Date.now() - state.lastHeard : undefined;
  }

  receive(msg: Buffer): void {
    const c = this.counters;
    c.datagrams++;
    c.bytes += msg.length;
    if (msg.length > this.config.link.maxDatagramBytes) {
      c.rejected.oversized++;
      return;
    }
    const decoded = decodeFrame(msg);
    if (!decoded.ok) {
      c.rejected[decoded.reason]++;
      return;
    }
    const frame = decoded.frame;
    const state = this.epochState(frame.epoch);
    state.datagrams++;
    state.lastHeard = Date.now();
    if (this.config.dedup === 'adjacent') {
      if (this.adjacent.isDuplicate(msg)) {
        c.duplicates++;
        return;
      }
    } else {
      const verdict = state.window.accept(frame.linkSeq);
      if (verdict !== 'new') {
        if (verdict === 'duplicate') c.duplicates++;
        else c.stale++;
        return;
      }
    }
    c.frames++;
    switch (frame.type) {
      case FrameType.Udp:
        this.handlers.udp(frame);
        break;
      case FrameType.Heartbeat:
        this.handlers.heartbeat(frame.epoch, frame, state.datagrams);
        break;
      default:
        this.handlers.session(frame.epoch, frame);
    }
  }

  snapshot(): CollectorCounters {
    let lost = this.lostInDroppedEpochs;
    for (const s of this.epochs.values()) lost += s.window.lost;
    this.counters.lostFrames = lost;
    return structuredClone(this.counters);
  }

  close(): void {
    this.socket.close();
  }

  private epochState(epoch: number): EpochState {
    let state = this.epochs.get(epoch);
    if (state) return state;
    if (this.epochs.size >= MAX_EPOCHS) {
      const [oldest] = [...this.epochs.entries()].sort((a, b) => a[1].lastHeard - b[1].lastHeard);
      if (oldest) {
        this.epochs.delete(oldest[0]);
        this.lostInDroppedEpochs += oldest[1].window.lost;
        log.warn({ epoch: oldest[0] }, 'sender epoch dropped: its sessions will be aborted');
      }
    }
    state = { window: new SequenceWindow(this.config.windowFrames), datagrams: 0, lastHeard: Date.now() };
    this.epochs.set(epoch, state);
    log.info({ epoch }, 'new sender epoch');
    return state;
  }
}
