/**
 * Typed services: one interface, a process serves it (`node.serve`), any thread calls
 * it through a typed proxy over the group (`scope.service`). What the rest of the
 * library imports from this room.
 */
export { createService, type ServiceScope } from './client.js';
export { serve, type ServeHost } from './server.js';
export { transfer } from '../core/transfer.js';
export type {
  MethodArgs,
  MethodNames,
  MethodResult,
  Remote,
  RemoteAll,
  RemoteTell,
  ServeOptions,
  Served,
  Service,
  ServiceCallOptions,
  ServiceKey,
  ServiceOptions,
} from './types.js';
