/**
 * The tag's key-value storage: `localStorage`, with an in-memory fallback for every key it cannot
 * hold (storage disabled, private modes, quota exceeded). Values in memory last as long as the page.
 */
export interface Store {
  get(key: string): string | null;
  set(key: string, value: string): void;
  del(key: string): void;
  /** Keys starting with `prefix`, from both places. */
  keys(prefix: string): string[];
}

/** The page's {@link Store}. */
export function createStore(): Store {
  const memory = new Map<string, string>();
  let local: Storage | undefined;
  try {
    local = window.localStorage;
    local.setItem('sy_probe', '1');
    local.removeItem('sy_probe');
  } catch {
    local = undefined;
  }
  return {
    get: (key) => {
      if (memory.has(key)) return memory.get(key)!;
      try {
        return local ? local.getItem(key) : null;
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        local!.setItem(key, value);
        memory.delete(key);
      } catch {
        memory.set(key, value);
      }
    },
    del(key) {
      memory.delete(key);
      try {
        local?.removeItem(key);
      } catch {
        // Nothing stored there.
      }
    },
    keys(prefix) {
      const keys = new Set(memory.keys());
      try {
        for (let i = 0; local && i < local.length; i++) keys.add(local.key(i)!);
      } catch {
        // Storage gone: memory only.
      }
      return [...keys].filter((key) => key.startsWith(prefix));
    },
  };
}
