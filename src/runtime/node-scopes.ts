/**
 * The scopes of one node, made on first use (`node.pg`, `node.scope(name)`), each with
 * the node's side of it (`ScopeHooks`), which only the node holds.
 */
import type { Caller } from '../dispatch/options.js';
import { Scope, type ScopeHooks, type ScopeHost } from '../pg/scope.js';

export class NodeScopes {
  readonly #host: ScopeHost;
  readonly #caller: Caller;
  readonly #scopes = new Map<string, [Scope, ScopeHooks]>();

  /** Dispatch sees the node only as a `Caller` (strategy functions get it as `ctx.node`). */
  constructor(host: ScopeHost, caller: Caller) {
    this.#host = host;
    this.#caller = caller;
  }

  /** The scope `name`, made if needed. */
  scope(name: string): Scope {
    return this.#entry(name)[0];
  }

  /** The node's side of scope `name`, made if needed. */
  hooks(name: string): ScopeHooks {
    return this.#entry(name)[1];
  }

  /** The node's side of scope `name` if this node has used it. */
  existing(name: string): ScopeHooks | undefined {
    return this.#scopes.get(name)?.[1];
  }

  /** Every scope's node side. */
  *all(): IterableIterator<ScopeHooks> {
    for (const [, hooks] of this.#scopes.values()) yield hooks;
  }

  #entry(name: string): [Scope, ScopeHooks] {
    let s = this.#scopes.get(name);
    if (s === undefined) {
      let hooks!: ScopeHooks;
      const scope = new Scope(this.#host, this.#caller, name, (h) => (hooks = h));
      s = [scope, hooks];
      this.#scopes.set(name, s);
    }
    return s;
  }
}
