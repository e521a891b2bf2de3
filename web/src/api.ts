// The page's only way to the server: JSON-RPC calls, an event.from loop that
// keeps a local copy of the objects it shows, and the HTTP handlers.
import sentences from 'virtual:xapi-errors'

export type Ref = string
export type Rec = Record<string, any>

/** A XenAPI error: its code, its parameters and our catalogue's sentence. */
export class ApiError extends Error {
  constructor(
    public code: string,
    public params: string[] = [],
  ) {
    super(`${code}: ${describe(code)}`)
  }
  get sentence(): string {
    return describe(this.code)
  }
}

export function describe(code: string): string {
  return (sentences as Record<string, string>)[code] ?? 'The server refused the request.'
}

/** Turns anything thrown into an ApiError (network trouble included). */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e
  return new ApiError('INTERNAL_ERROR', [e instanceof Error ? e.message : String(e)])
}

let nextId = 1

/** One JSON-RPC 2.0 call; a XenAPI failure becomes an ApiError. */
export async function rpc(method: string, params: unknown[], signal?: AbortSignal): Promise<any> {
  let res: Response
  try {
    res = await fetch('/jsonrpc', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
      signal,
    })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError('CONNECTION_FAILED', [String((e as Error).message ?? e)])
  }
  if (!res.ok) throw new ApiError('HTTP_' + res.status, [await res.text().catch(() => '')])
  const body = await res.json()
  if (body.error != null) {
    const err = body.error
    // v2: {code, message, data}; the rare pre-dispatch shape is a list.
    if (Array.isArray(err)) throw new ApiError(String(err[0]), err.slice(1).map(String))
    const data = Array.isArray(err.data) ? err.data.map(String) : []
    throw new ApiError(String(err.message ?? 'INTERNAL_ERROR'), data)
  }
  return body.result
}

// ---- the session ----------------------------------------------------------

export let session: string | null = sessionStorage.getItem('xapi-session')

export async function login(user: string, password: string): Promise<void> {
  session = await rpc('session.login_with_password', [user, password, '1.0', 'xapi-rs web'])
  sessionStorage.setItem('xapi-session', session as string)
}

export async function logout(): Promise<void> {
  const s = session
  forget()
  if (s) await rpc('session.logout', [s]).catch(() => undefined)
}

function forget() {
  session = null
  sessionStorage.removeItem('xapi-session')
  stopEvents()
  db.clear()
  emit()
}

/** A call in the current session: `call('VM.start', vm, false, false)`. */
export function call(method: string, ...args: unknown[]): Promise<any> {
  if (!session) return Promise.reject(new ApiError('SESSION_INVALID', []))
  return rpc(method, [session, ...args])
}

// ---- the local copy, kept by event.from ----------------------------------

export const CLASSES = [
  'pool', 'host', 'host_metrics', 'vm', 'vm_metrics', 'vm_guest_metrics', 'console',
  'vbd', 'vdi', 'sr', 'pbd', 'vif', 'network', 'pif', 'task', 'message',
] as const

class Db {
  tables = new Map<string, Map<Ref, Rec>>()
  /** Bumped on every change; views compare it to re-render. */
  version = 0
  loaded = false
  table(cls: string): Map<Ref, Rec> {
    let t = this.tables.get(cls)
    if (!t) this.tables.set(cls, (t = new Map()))
    return t
  }
  get(cls: string, ref: Ref | null | undefined): Rec | undefined {
    return ref ? this.tables.get(cls)?.get(ref) : undefined
  }
  clear() {
    this.tables.clear()
    this.loaded = false
    this.version++
  }
}
export const db = new Db()

type Listener = () => void
const listeners = new Set<Listener>()
export function subscribe(l: Listener): () => void {
  listeners.add(l)
  return () => listeners.delete(l)
}
let scheduled = false
/** Listeners run once per animation frame, however many events arrived. */
function emit() {
  if (scheduled) return
  scheduled = true
  requestAnimationFrame(() => {
    scheduled = false
    for (const l of [...listeners]) l()
  })
}

let loop: AbortController | null = null
export let eventError: ApiError | null = null

/** Starts the event.from loop (idempotent). The first call returns every object. */
export function startEvents(onSessionLost: () => void) {
  if (loop) return
  const ctl = (loop = new AbortController())
  ;(async () => {
    let token = ''
    let failures = 0
    while (!ctl.signal.aborted && session) {
      try {
        const r = await rpc('event.from', [session, CLASSES, token, 30.0], ctl.signal)
        failures = 0
        eventError = null
        for (const ev of r.events as Rec[]) {
          const t = db.table(String(ev.class).toLowerCase())
          if (ev.operation === 'del') t.delete(ev.ref)
          else if (ev.snapshot) t.set(ev.ref, ev.snapshot)
        }
        token = r.token
        db.loaded = true
        db.version++
        emit()
      } catch (e) {
        if (ctl.signal.aborted) return
        const err = asApiError(e)
        if (err.code === 'SESSION_INVALID') {
          forget()
          onSessionLost()
          return
        }
        // A lost token (EVENTS_LOST) means starting over from the full set.
        if (err.code === 'EVENTS_LOST' || err.code === 'EVENT_FROM_TOKEN_PARSE_FAILURE') token = ''
        eventError = err
        emit()
        failures++
        // Bounded back-off while the server is unreachable.
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** failures)))
      }
    }
  })()
}

export function stopEvents() {
  loop?.abort()
  loop = null
}

// ---- tasks ------------------------------------------------------------------

/** Waits (by events) for a task to finish; its result, or its error thrown. */
export function waitTask(task: Ref): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const t = db.get('task', task)
      if (!t || t.status === 'pending' || t.status === 'cancelling') return false
      off()
      if (t.status === 'success') resolve(String(t.result ?? ''))
      else if (t.status === 'cancelled') reject(new ApiError('TASK_CANCELLED', [task]))
      else {
        const info: string[] = t.error_info ?? []
        reject(new ApiError(info[0] ?? 'INTERNAL_ERROR', info.slice(1)))
      }
      return true
    }
    const off = subscribe(() => void check())
    check()
  })
}

/** Runs `Async.<method>`, reporting the task to `onTask`, and waits for it. */
export async function runAsync(method: string, args: unknown[], onTask?: (t: Ref) => void): Promise<string> {
  const task: Ref = await call('Async.' + method, ...args)
  onTask?.(task)
  try {
    return await waitTask(task)
  } finally {
    call('task.destroy', task).catch(() => undefined)
  }
}

/** The refs in a task result (an XML-RPC fragment). */
export function refsOf(result: string): Ref[] {
  return [...result.matchAll(/OpaqueRef:[0-9a-fA-F-]+/g)].map((m) => m[0])
}

// ---- small helpers ----------------------------------------------------------

export function bytes(n: number | string | undefined): string {
  let v = Number(n ?? 0)
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`
}

export function vmIps(vm: Rec): string[] {
  const gm = db.get('vm_guest_metrics', vm.guest_metrics)
  if (!gm?.networks) return []
  return Object.entries(gm.networks as Record<string, string>)
    .filter(([k]) => k.endsWith('/ip') || /\/ipv4\/\d+$/.test(k))
    .map(([, v]) => v)
    .filter((v, i, a) => a.indexOf(v) === i)
}

export const isVm = (vm: Rec) => !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain
