/** The TypeScript binding of libbpf: everything tacmesh needs to run its kernel programs. */
export {
  type AttachMode,
  type Attachment,
  type AttachOptions,
  attach,
  type Direction,
  ifindexOf,
} from './attach.js';
export { BPF_ANY, BPF_EXIST, BPF_NOEXIST, BpfMap, type Codec, TypedMap } from './map.js';
export { BpfObject, BpfProgram } from './object.js';
export { objectPath } from './paths.js';
export { RingBufferReader } from './ringbuf.js';
