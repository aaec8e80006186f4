/**
 * How a channel to a node of another OS process carries its frames (see channel.ts,
 * "Remote mode"). The coordinators on the way relay bytes over a broker, so the node
 * serializes here, with v8's structured-clone serializer:
 *
 * - a batch of frames becomes one buffer, serialized once and transferred (not copied)
 *   to the coordinator: one serializer pass per job, not one per message;
 * - a payload that is not surely small and cloneable (`boundedSize`) is serialized alone
 *   when it is sent, so that a value that cannot cross a process, or is over the broker's
 *   limit, throws at the sender with a named error; its kind is marked `ENCODED` and
 *   the receiver deserializes that payload on its own.
 */
import { DefaultSerializer, deserialize } from 'node:v8';
import { boundedSize } from '../core/cloneable.js';
import { MessageCloneError, RemoteMessageError } from '../core/errors.js';
import { ENCODED, FRAME_LENGTH, HAS_PAYLOAD } from './frames.js';

/**
 * One serializer, reused: making one costs about as much as serializing a small value.
 * After a failure its buffer holds a partial write, so it is replaced.
 */
let serializer = new DefaultSerializer();

function serialize(value: unknown): Buffer {
  try {
    serializer.writeHeader();
    serializer.writeValue(value);
    return serializer.releaseBuffer();
  } catch (error) {
    serializer = new DefaultSerializer();
    throw error;
  }
}

/** A payload serialized alone, checked against the broker's limit. */
function encodePayload(payload: unknown, maxFrame: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = serialize(payload);
  } catch (error) {
    const why = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
    throw new MessageCloneError(
      `the message cannot be sent to another process: ${why.replace(/\.$/, '')}. ` +
        'Send plain data (objects, arrays, strings, numbers, typed arrays, Maps, Sets, errors).',
      { cause: error },
    );
  }
  if (bytes.byteLength > maxFrame) {
    throw new RemoteMessageError(
      `the message is ${bytes.byteLength} bytes serialized, over the ${maxFrame} bytes a message ` +
        "to another process can take (the broker's max_payload): send it in parts, or raise the limit",
    );
  }
  return bytes;
}

/** Readies a frame for a remote channel; throws (having changed nothing) when its payload cannot go. */
export function prepareRemote(frame: unknown[], maxFrame: number): void {
  const kind = frame[0] as number;
  if (HAS_PAYLOAD[kind] !== true) return;
  const last = frame.length - 1;
  const size = boundedSize(frame[last]);
  if (size >= 0 && size <= maxFrame / 4) return;
  frame[last] = encodePayload(frame[last], maxFrame);
  frame[0] = kind | ENCODED;
}

/** A batch of frames as one buffer to transfer. */
export function encodeBatch(batch: unknown): Uint8Array {
  return serialize(batch);
}

/** The batch in `bytes`; `undefined` when it does not decode. */
export function decodeBatch(bytes: unknown): unknown {
  if (!(bytes instanceof Uint8Array)) return undefined;
  try {
    return deserialize(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Undoes `prepareRemote` on the frame at `f[at]` of a batch that arrived, in place;
 * returns its kind, or -1 when it is malformed.
 */
export function restoreRemote(f: unknown[], at: number): number {
  const marked = f[at];
  if (typeof marked !== 'number') return -1;
  if ((marked & ENCODED) === 0) return marked;
  const kind = marked & ~ENCODED;
  if (marked !== (kind | ENCODED) || HAS_PAYLOAD[kind] !== true) return -1;
  const last = at + FRAME_LENGTH[kind]! - 1;
  const bytes = f[last];
  if (!(bytes instanceof Uint8Array)) return -1;
  try {
    f[last] = deserialize(bytes);
  } catch {
    return -1;
  }
  f[at] = kind;
  return kind;
}
