/**
 * The frames of a direct channel (channel.ts): their kinds and lengths. A batch is one
 * flat array of frames end to end, `[kind, ...fields, kind, ...fields]`, so that the
 * length of each kind is what tells one frame from the next.
 */
export const SEND = 0;
export const CALL = 1;
export const REPLY = 2;
export const FAIL = 3;
export const MONITOR = 4;
export const DEMONITOR = 5;
export const DOWN = 6;
export const DRAIN = 7;
export const DRAINED = 8;
export const NOT_RUN = 9;

/** Length of each kind of frame, kind included. */
export const FRAME_LENGTH: readonly number[] = [4, 5, 3, 3, 3, 3, 3, 2, 2, 3];

/** Kinds whose last element is a payload: SEND, CALL, REPLY, FAIL, DOWN, NOT_RUN. */
export const HAS_PAYLOAD: readonly boolean[] = [
  true,
  true,
  true,
  true,
  false,
  false,
  true,
  false,
  false,
  true,
];

/**
 * Added to the kind of a frame to another process whose payload was serialized on its
 * own (remote-codec.ts): the receiver deserializes that payload before the frame.
 */
export const ENCODED = 16;
