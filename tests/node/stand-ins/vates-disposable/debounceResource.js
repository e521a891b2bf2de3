'use strict'
// Stand-in for @vates/disposable/debounceResource.js (see README.md).
//
// createDebounceResource() returns debounceResource(pDisposable, delay):
// a disposable whose dispose() only schedules the real one `delay` ms later
// (debounceResource.defaultDelay by default; 0 disposes at once), so a
// resource (a remote, a XAPI connection) can be reused by the next user.
// debounceResource.flushAll() disposes every scheduled resource now, and
// makes those still in use dispose as soon as they are released.

exports.createDebounceResource = function createDebounceResource() {
  const flushers = new Set()

  async function debounceResource(pDisposable, delay = debounceResource.defaultDelay) {
    if (delay === 0) return pDisposable
    const disposable = await pDisposable
    let timer

    const disposeNow = async () => {
      if (timer === undefined) return
      clearTimeout(timer)
      timer = undefined
      flushers.delete(flush)
      try {
        await disposable.dispose()
      } catch (error) {
        console.warn('debounceResource: dispose failed', error)
      }
    }
    const flush = () => {
      if (timer !== undefined) return disposeNow()
      delay = 0 // not released yet: dispose right when it is
    }
    flushers.add(flush)

    return {
      value: disposable.value,
      dispose() {
        timer = setTimeout(disposeNow, delay)
      },
    }
  }

  debounceResource.defaultDelay = 0
  debounceResource.flushAll = () => {
    const all = [...flushers]
    flushers.clear()
    return Promise.all(all.map(flush => flush()))
  }
  return debounceResource
}
