/** Loads a task module of the benchmarks (its default export), as the pools do with `filename`. */
export type Task = (input: unknown) => unknown;

export async function loadTask(href: string): Promise<Task> {
  return ((await import(href)) as { default: Task }).default;
}
