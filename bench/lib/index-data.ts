/** The content of the index benchmark, shared by its main thread and its workers. */
import { makePid, type Pid } from '../../src/index.js';

export const groupName = (i: number): string => `group-${i}`;
/** Member j of group i; members spread over 4 nodes so that pids are large numbers. */
export const memberPid = (i: number, j: number): Pid => makePid(1 + (j % 4), i * 64 + j + 1);
/** Group sizes of the getMembers scaling figure. */
export const SIZES = [1, 8, 64, 1024, 65536];
export const sizeGroup = (n: number): string => `size-${n}`;
