// The two roles' interfaces, shared by main.ts (which calls them) and worker.ts (which serves them).
export interface Image {
  width: number;
  height: number;
}

export interface Resizer {
  resize(img: Image): { width: number; height: number; by: number; x: number };
}

/** Stateful: keeps a running digest per user, so every call about one user must reach the same worker. */
export interface Hasher {
  update(user: string, data: string): { user: string; digest: string; by: number };
}
