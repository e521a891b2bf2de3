'use strict'
// Stand-in for @vates/cached-dns.lookup (see README.md): a dns.lookup that
// remembers successful answers (all addresses, per hostname and family) for
// a minute. Errors are not cached.
const dns = require('node:dns')

const TTL_MS = 60e3
const MAX_ENTRIES = 500

exports.createCachedLookup = function createCachedLookup({ lookup = dns.lookup } = {}) {
  const cache = new Map() // key -> { results, expires }

  function answer(all, results, callback) {
    if (all) callback(null, results)
    else callback(null, results[0].address, results[0].family)
  }

  function cachedLookup(hostname, options, callback) {
    let all = false
    let family = 0
    if (typeof options === 'function') callback = options
    else if (typeof options === 'number') family = options
    else if (options != null) {
      if (options.verbatim === false) throw new Error('verbatim: false is not supported')
      all = options.all ?? false
      family = options.family ?? 0
    }
    const key = `${hostname}/${family}`
    const hit = cache.get(key)
    if (hit !== undefined && hit.expires > Date.now()) {
      setImmediate(answer, all, hit.results, callback)
      return
    }
    cache.delete(key)
    lookup(hostname, { all: true, family, verbatim: true }, (error, results) => {
      if (error != null) return callback(error)
      if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value)
      cache.set(key, { results, expires: Date.now() + TTL_MS })
      answer(all, results, callback)
    })
  }

  cachedLookup.patchGlobal = function patchGlobal() {
    const previous = dns.lookup
    dns.lookup = cachedLookup
    return function restoreGlobal() {
      if (dns.lookup !== cachedLookup) throw new Error('dns.lookup was replaced meanwhile')
      dns.lookup = previous
    }
  }
  return cachedLookup
}
