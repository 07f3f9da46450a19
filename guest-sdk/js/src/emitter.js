// A small EventEmitter: on, once, off, emit, as Node's.

/** Calls listeners by event name, in the order they were added. */
export class EventEmitter {
  #listeners = new Map();

  /** Adds `listener` for `event`. */
  on(event, listener) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, []);
    this.#listeners.get(event).push(listener);
    return this;
  }

  /** Alias of `on`. */
  addListener(event, listener) {
    return this.on(event, listener);
  }

  /** Adds `listener` for the next `event` only. */
  once(event, listener) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      listener.apply(this, args);
    };
    wrapper.listener = listener;
    return this.on(event, wrapper);
  }

  /** Removes `listener` from `event`. */
  off(event, listener) {
    const list = this.#listeners.get(event);
    if (list) {
      const at = list.findIndex((l) => l === listener || l.listener === listener);
      if (at >= 0) list.splice(at, 1);
    }
    return this;
  }

  /** Alias of `off`. */
  removeListener(event, listener) {
    return this.off(event, listener);
  }

  /** How many listeners `event` has. */
  listenerCount(event) {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Calls the listeners of `event`; an 'error' without one is thrown. */
  emit(event, ...args) {
    const list = [...(this.#listeners.get(event) ?? [])];
    if (event === "error" && list.length === 0) throw args[0];
    for (const listener of list) listener.apply(this, args);
    return list.length > 0;
  }
}
