// Shared helpers: start one xapid per test file on a free loopback port with a
// fresh data directory, and build npm `xen-api` clients pointed at it.

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync } from 'node:fs'
import { createServer, connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

import { createClient } from 'xen-api'

const NODE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')

export const XAPID = process.env.XAPID_BIN
  ? resolve(process.env.XAPID_BIN)
  : resolve(NODE_DIR, '../../target/debug/xapid')

export const USER = 'root'
export const PASSWORD = 'test-password'
export const TRANSPORTS = ['json-rpc', 'xml-rpc', 'auto']

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolvePort(port))
    })
  })
}

function canConnect(port) {
  return new Promise(resolveConn => {
    const sock = netConnect({ host: '127.0.0.1', port })
    const done = ok => {
      sock.destroy()
      resolveConn(ok)
    }
    sock.setTimeout(200, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

// Waits until something accepts TCP connections on the loopback port.
export async function waitForPort(port, ms = 10e3) {
  const deadline = Date.now() + ms
  while (!(await canConnect(port))) {
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`)
    await sleep(50)
  }
}

// Servers still running when the test process exits (a crash, a test that
// never reached its after hook) are killed so no xapid is left behind.
const running = new Set()
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL')
})

// Starts a server; returns { url, port, dataDir, proc, log(), stop() }.
export async function startServer({ extraArgs = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'xapid-node-test-'))
  const logPath = join(dataDir, 'xapid.log')
  const port = await freePort()
  const logFd = openSync(logPath, 'a')
  const proc = spawn(
    XAPID,
    [
      '--data-dir', dataDir,
      '--http', `127.0.0.1:${port}`,
      '--root-password', PASSWORD,
      '--login-failure-delay-ms', '100',
      ...extraArgs,
    ],
    { stdio: ['ignore', logFd, logFd] }
  )
  closeSync(logFd)
  running.add(proc)

  let exited = null
  const exitPromise = new Promise(resolveExit => {
    proc.once('exit', (code, signal) => {
      running.delete(proc)
      exited = { code, signal }
      resolveExit(exited)
    })
    proc.once('error', error => {
      running.delete(proc)
      exited = { error }
      resolveExit(exited)
    })
  })

  const log = () => {
    try {
      return readFileSync(logPath, 'utf8')
    } catch {
      return '<no log>'
    }
  }

  const cleanup = () => rmSync(dataDir, { recursive: true, force: true })

  const deadline = Date.now() + 20e3
  for (;;) {
    if (exited !== null) {
      const text = log()
      cleanup()
      throw new Error(`xapid (${XAPID}) exited early: ${JSON.stringify(exited)}\n${text}`)
    }
    if (await canConnect(port)) break
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      await exitPromise
      const text = log()
      cleanup()
      throw new Error(`xapid did not listen on port ${port} within 20 s\n${text}`)
    }
    await sleep(50)
  }

  const stop = async () => {
    if (exited === null) {
      proc.kill('SIGTERM')
      const timer = setTimeout(() => {
        if (exited === null) proc.kill('SIGKILL')
      }, 10e3)
      await exitPromise
      clearTimeout(timer)
    }
    cleanup()
    return exited
  }

  return { url: `http://127.0.0.1:${port}`, port, dataDir, proc, log, stop }
}

// A client as Xen Orchestra builds it. Its RPCs are recorded (see
// spyTransport) in rpcLog(xapi). eventPollDelay only shortens the client's
// 60 s back-off after a failed event.from, so a broken event loop cannot keep
// the test process alive.
const rpcLogs = new WeakMap()
export function makeClient(url, transport, opts = {}) {
  const xapi = createClient({
    url,
    auth: { user: USER, password: PASSWORD },
    allowUnauthorized: true,
    transport,
    eventPollDelay: 1e3,
    ...opts,
  })
  rpcLogs.set(xapi, spyTransport(xapi))
  return xapi
}

export const rpcLog = xapi => rpcLogs.get(xapi)

// Calls still waiting for their reply.
export const pendingCalls = (xapi, method) => rpcLog(xapi).filter(c => c.end === undefined && (method === undefined || c.method === method))

// Disconnects and waits (bounded) for the long-polling event.from to end, so
// stopping the server afterwards does not make the client log errors.
export async function closeClient(xapi, ms = 3e3) {
  await xapi.disconnect()
  const deadline = Date.now() + ms
  while (pendingCalls(xapi).length !== 0 && Date.now() < deadline) await sleep(20)
}

// Rejects if `promise` does not settle within `ms`.
export function withTimeout(promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

// Polls `predicate` until it returns a truthy value (which is returned).
export async function waitFor(predicate, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = predicate()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(20)
  }
}

// Cached objects of one type (as the client names it, e.g. 'VM', 'host').
export function objectsOfType(xapi, type) {
  return Object.values(xapi.objects.all).filter(o => o.$type === type)
}

// Raw HTTP POST, to look at what the server sends on the wire.
export async function rawPost(url, path, body, contentType) {
  const res = await fetch(new URL(path, url), {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body,
  })
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() }
}

// A raw JSON-RPC call; returns { status, contentType, text, json }.
export async function rawJsonRpc(url, payload) {
  const r = await rawPost(url, '/jsonrpc', JSON.stringify(payload), 'application/json')
  let json
  try {
    json = JSON.parse(r.text)
  } catch {
    json = undefined
  }
  return { ...r, json }
}

// Runs `fn` with a `console.warn` that records instead of printing; the client
// reports watcher failures only through console.warn.
export function captureWarnings() {
  const warnings = []
  const orig = console.warn
  console.warn = (...args) => {
    warnings.push(args)
  }
  return {
    warnings,
    restore() {
      console.warn = orig
    },
  }
}

// Records every RPC the client sends through its transport (the client's own
// request/response code is untouched; this only observes it). Must be called
// before connect().
export function spyTransport(xapi) {
  const calls = []
  const orig = xapi._transport
  xapi._transport = async (method, args) => {
    const entry = { method, args, start: Date.now(), end: undefined, result: undefined, error: undefined }
    calls.push(entry)
    try {
      entry.result = await orig(method, args)
      return entry.result
    } catch (error) {
      entry.error = error
      throw error
    } finally {
      entry.end = Date.now()
    }
  }
  return calls
}

const xmlEscape = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

// Minimal XML-RPC encoder for raw requests: strings, doubles (wrap numbers in
// { double: n }), arrays and structs.
export function xmlValue(v) {
  if (Array.isArray(v)) return `<value><array><data>${v.map(xmlValue).join('')}</data></array></value>`
  if (v !== null && typeof v === 'object') {
    if ('double' in v) return `<value><double>${v.double}</double></value>`
    return `<value><struct>${Object.entries(v)
      .map(([k, x]) => `<member><name>${xmlEscape(k)}</name>${xmlValue(x)}</member>`)
      .join('')}</struct></value>`
  }
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`
  return `<value><string>${xmlEscape(v)}</string></value>`
}

export function xmlCall(method, params) {
  return `<?xml version="1.0"?><methodCall><methodName>${xmlEscape(method)}</methodName><params>${params
    .map(p => `<param>${xmlValue(p)}</param>`)
    .join('')}</params></methodCall>`
}

export function rawXmlRpc(url, method, params, path = '/') {
  return rawPost(url, path, xmlCall(method, params), 'text/xml')
}

export const DATETIME_RE = /^\d{8}T\d\d:\d\d:\d\dZ$/

// Parses "X.Y.Z" and compares with a minimum.
export function semverAtLeast(v, min) {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v)
  if (m === null) return false
  const a = m.slice(1, 4).map(Number)
  const b = min.split('.').map(Number)
  for (let i = 0; i < 3; ++i) {
    if (a[i] !== b[i]) return a[i] > b[i]
  }
  return true
}

export const isRef = v => typeof v === 'string' && /^OpaqueRef:[0-9a-f-]{36}$/.test(v)
export const NULL_REF = 'OpaqueRef:NULL'
