'use strict'
// Stand-in for @vates/disposable/deduped.js (see README.md).
//
// deduped(factory, keyFn) wraps a factory of disposables ({ value, dispose })
// so that calls with the same keys share one disposable: it is created by the
// first call and disposed when the last user disposes it.

// A map keyed by a list of values (compared with Map's SameValueZero).
class KeysMap {
  #root = new Map()
  #node(keys, create) {
    let node = this.#root
    for (const key of keys) {
      let next = node.get(key)
      if (next === undefined) {
        if (!create) return undefined
        next = new Map()
        node.set(key, next)
      }
      node = next
    }
    return node
  }
  static #VALUE = Symbol('value')
  get(keys) {
    return this.#node(keys, false)?.get(KeysMap.#VALUE)
  }
  set(keys, value) {
    this.#node(keys, true).set(KeysMap.#VALUE, value)
  }
  delete(keys) {
    this.#node(keys, false)?.delete(KeysMap.#VALUE)
  }
}

exports.deduped = function deduped(factory, keyFn = (...args) => args) {
  const shared = new KeysMap()
  return function dedupedFactory(...args) {
    const k = keyFn.apply(this, args)
    const keys = Array.isArray(k) ? k : [k]
    let entry = shared.get(keys)
    if (entry === undefined) {
      entry = { users: 0, get: undefined }
      const share = disposable => {
        const wrapper = {
          value: disposable.value,
          dispose() {
            if (--entry.users === 0) {
              shared.delete(keys)
              return disposable.dispose()
            }
          },
        }
        return wrapper
      }
      const result = factory.apply(this, args)
      if (typeof result?.then === 'function') {
        const pending = result.then(share)
        pending.catch(() => shared.delete(keys))
        entry.get = () => pending
      } else {
        const wrapper = share(result)
        entry.get = () => wrapper
      }
      shared.set(keys, entry)
    }
    entry.users++
    return entry.get()
  }
}
