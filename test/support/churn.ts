/**
 * Shared by the memory tests and their reader fixtures (no ava import here).
 *
 * Churn: group `name-<i>` holds the single pid `pidFor(i)`; the writer keeps a window
 * of live groups whose names keep changing.
 *
 * Growth: group `k<i>` holds `growthMembers(i)`; the writer only adds groups, in order,
 * so every version holds exactly `k0 … k<n−1>` for some n.
 */
import { makePid, type Pid } from '../../src/index.js';

export const M_STOP = 0;
/** The writer has completed every churn cycle up to this position. */
export const M_CURRENT = 1;
/** Growth: number of groups once the writer is done. */
export const M_TOTAL = 2;
export const M_WORDS = 4;

export const nameFor = (i: number): string => `name-${i}`;
export const pidFor = (i: number): Pid => makePid(1 + (i % 4), i + 1);

export const growthName = (i: number): string => `k${i}`;
export const growthMembers = (i: number): Pid[] => [
  makePid(1 + (i % 4), i + 1),
  makePid(1 + ((i + 1) % 4), 2 * i + 1),
];

export interface ReaderReport {
  type: 'report';
  reads: number;
  violations: number;
  samples: string[];
  finalCount: number;
  finalGroups: number;
  /** Distinct group counts observed (growth), a sign that the reader saw progress. */
  progress: number;
}
