'use strict'
// Stand-in for @vates/task 0.7 (see README.md): a task is a node in a tree
// of tasks. Each one reports its life to an onProgress callback as events
// {id, timestamp, type, ...}: start {properties, parentId}, info/warning
// {message, data}, property {name, value}, abortionRequested {reason} and
// end {status, result}. A task started inside another (through
// AsyncLocalStorage) becomes its child, reports to the same callback and is
// aborted with it. Static Task.info/set/warning act on the current task.

const { AsyncLocalStorage } = require('node:async_hooks')

const SUCCESS = 'success'
const FAILURE = 'failure'
const PENDING = 'pending'
exports.STATUS = { FAILURE, PENDING, SUCCESS }

// One store per process, shared with any other copy of this module.
const STORE_KEY = '@vates/task@0'
const storage = (globalThis[STORE_KEY] ??= new AsyncLocalStorage())
const current = () => storage.getStore()

// Errors have non-enumerable fields: copy those a log needs.
function serializeError(error) {
  if (!(error instanceof Error)) return error
  return {
    ...error,
    cause: error.cause,
    code: error.code,
    errors: Array.isArray(error.errors) ? error.errors.map(serializeError) : error.errors,
    message: error.message,
    name: error.name,
    stack: error.stack,
  }
}
exports.serializeError = serializeError

let counter = 0
function newId() {
  return Date.now().toString(36).padStart(9, '0') + '-' + (++counter).toString(36) + Math.random().toString(36).slice(2, 8)
}

function ended() {
  throw new Error('task has already ended')
}

class Task {
  // public for compatibility with other copies of the library
  _abortController = new AbortController()
  _onProgress

  #id
  #pendingStart // the start event, until it is sent
  #status = PENDING
  #running = false

  constructor({ properties, onProgress } = {}) {
    this.#pendingStart = { properties }
    const parent = current()
    if (onProgress !== undefined) {
      this._onProgress = onProgress
    } else if (parent !== undefined) {
      this._onProgress = parent._onProgress
      this.#pendingStart.parentId = parent.id
      const parentSignal = parent._abortController.signal
      parentSignal.addEventListener('abort', () => this._abortController.abort(parentSignal.reason))
    } else {
      this._onProgress = () => {}
    }
    const signal = this._abortController.signal
    signal.addEventListener('abort', () => {
      if (this.#status !== PENDING) return
      if (this.#pendingStart !== undefined) this.start()
      this.#emit('abortionRequested', { reason: signal.reason })
      if (!this.#running) this.#end(FAILURE, signal.reason)
    })
  }

  get id() {
    if (this.#id === undefined) this.#id = newId()
    return this.#id
  }

  set id(value) {
    if (this.#id !== undefined) throw new Error('task id already set')
    this.#id = value
  }

  get status() {
    return this.#status
  }

  static get abortSignal() {
    return current()?._abortController.signal
  }

  // Task.run([opts], fn | methodName, ...args)
  static run(...args) {
    const opts = typeof args[0] === 'object' && args[0] !== null ? args.shift() : undefined
    let fn = args.shift()
    const thisArg = this === Task ? undefined : this
    if (typeof fn !== 'function') fn = this[fn]
    return new Task(opts).run(() => fn.apply(thisArg, args))
  }

  // Task.wrap(opts | optsFn, fn) or Task.wrap(fn, opts) (decorator order)
  static wrap(opts, fn) {
    if (typeof fn !== 'function') [opts, fn] = [fn, opts]
    return function taskWrapped(...args) {
      const o = typeof opts === 'function' ? opts.apply(this, args) : opts
      return Task.run(o, () => fn.apply(this, args))
    }
  }

  #emit(type, data) {
    if (this.#pendingStart !== undefined) throw new Error('task has not started yet')
    this._onProgress({ ...data, id: this.id, timestamp: Date.now(), type })
  }

  #end(status, result) {
    if (this.#status !== PENDING) throw new Error('task has already ended')
    if (this.#running) throw new Error('task is still running')
    if (result instanceof Error && result.toJSON === undefined) result = serializeError(result)
    this.#emit('end', { status, result })
    this._onProgress = ended
    this.#status = status
  }

  start() {
    const data = this.#pendingStart
    if (data === undefined) throw new Error('task has already started')
    this.#pendingStart = undefined
    this.#emit('start', data)
  }

  abort(reason) {
    this._abortController.abort(reason)
  }

  info(message, data) {
    this.#emit('info', { data, message })
  }

  warning(message, data) {
    if (this.#status !== PENDING) throw new Error('task has already ended')
    this.#emit('warning', { data, message })
  }

  set(name, value) {
    if (this.#status !== PENDING) throw new Error('task has already ended')
    this.#emit('property', { name, value })
  }

  success(result) {
    this.#end(SUCCESS, result)
  }

  failure(error) {
    this.#end(FAILURE, error)
  }

  // Runs fn as this task's body; a throw ends the task as a failure, a
  // return leaves it pending (run() ends it).
  async runInside(fn) {
    if (this.#status !== PENDING) throw new Error('task has already ended')
    if (this.#running) throw new Error('task is already running')
    this.#running = true
    if (this.#pendingStart !== undefined) this.start()
    try {
      const result = await storage.run(this, fn, this)
      this.#running = false
      return result
    } catch (error) {
      this.#running = false
      this.#end(FAILURE, error)
      throw error
    }
  }

  async run(fn) {
    const result = await this.runInside(fn)
    if (this.#status === PENDING) this.#end(SUCCESS, result)
    return result
  }

  wrap(fn) {
    const task = this
    return function (...args) {
      return task.run(() => fn.apply(this, args))
    }
  }

  wrapInside(fn) {
    const task = this
    return function (...args) {
      return task.runInside(() => fn.apply(this, args))
    }
  }
}

for (const name of ['info', 'set', 'warning']) {
  Task[name] = function (...args) {
    const task = current()
    if (task !== undefined) return task[name](...args)
  }
}

exports.Task = Task
