/**
 * The wire schema, loaded from proto/ at run time (the only definition of it) with the
 * TypeScript types generated from the same file (scripts/gen-proto.sh).
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './gen/tower.js';

export const SCHEMA_VERSION = 1;

const PROTO = fileURLToPath(new URL('../../proto/tacmesh/v1/tower.proto', import.meta.url));

// The same options the types were generated with (scripts/gen-proto.sh).
const definition = protoLoader.loadSync(PROTO, {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
export const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;

export type { FlowRecord } from './gen/tacmesh/v1/FlowRecord.js';
export type { Hello__Output } from './gen/tacmesh/v1/Hello.js';
export type { HttpEvent } from './gen/tacmesh/v1/HttpEvent.js';
export type { LinkReport, LinkReport__Output } from './gen/tacmesh/v1/LinkReport.js';
export type { MonitorConfig, MonitorConfig__Output } from './gen/tacmesh/v1/MonitorConfig.js';
export type { MonitorStats } from './gen/tacmesh/v1/MonitorStats.js';
export type { NodeMessage, NodeMessage__Output } from './gen/tacmesh/v1/NodeMessage.js';
export type { QosClass } from './gen/tacmesh/v1/QosClass.js';
export type { QosClassCounters } from './gen/tacmesh/v1/QosClassCounters.js';
export type { QosCounters, QosCounters__Output } from './gen/tacmesh/v1/QosCounters.js';
export type { QosPolicy, QosPolicy__Output } from './gen/tacmesh/v1/QosPolicy.js';
export type { QosRule } from './gen/tacmesh/v1/QosRule.js';
export type { RecordBatch, RecordBatch__Output } from './gen/tacmesh/v1/RecordBatch.js';
export type { RouteReport } from './gen/tacmesh/v1/RouteReport.js';
export type { ServiceDeclaration__Output } from './gen/tacmesh/v1/ServiceDeclaration.js';
export type { TowerClient, TowerHandlers } from './gen/tacmesh/v1/Tower.js';
export type { TowerMessage, TowerMessage__Output } from './gen/tacmesh/v1/TowerMessage.js';
