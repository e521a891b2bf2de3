// Shared pieces: the db hook, error boxes, task progress, graphs.
import { useEffect, useState, useRef } from 'preact/hooks'
import type { ComponentChildren } from 'preact'
import { db, subscribe, call, ApiError, asApiError, type Ref } from './api'

/** Re-renders the caller whenever the local copy changes (once per frame). */
export function useDb(): number {
  const [v, setV] = useState(db.version)
  useEffect(() => subscribe(() => setV(db.version)), [])
  return v
}

export function ErrorBox({ error, onClose }: { error: ApiError | null; onClose?: () => void }) {
  if (!error) return null
  return (
    <div class="error" role="alert">
      <strong class="code">{error.code}</strong>
      <span class="sentence"> {error.sentence}</span>
      {error.params.length > 0 && <span class="params"> ({error.params.join(', ')})</span>}
      {onClose && (
        <button type="button" class="link" onClick={onClose} aria-label="Dismiss the error">
          ×
        </button>
      )}
    </div>
  )
}

/** Runs actions one at a time, keeping the last error for an ErrorBox. */
export function useAction(): [(f: () => Promise<unknown>) => Promise<void>, boolean, ApiError | null, () => void] {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const run = async (f: () => Promise<unknown>) => {
    setBusy(true)
    setError(null)
    try {
      await f()
    } catch (e) {
      setError(asApiError(e))
    } finally {
      setBusy(false)
    }
  }
  return [run, busy, error, () => setError(null)]
}

/** A task's progress, live by events, with a cancel button when allowed. */
export function TaskRow({ task }: { task: Ref }) {
  useDb()
  const [error, setError] = useState<ApiError | null>(null)
  const t = db.get('task', task)
  if (!t) return null
  const pct = Math.round(Number(t.progress ?? 0) * 100)
  // Offered for every pending task: xapi lists `cancel` in allowed_operations
  // only for cancellable ones, this server lists none; a refusal is shown.
  const cancellable = t.status === 'pending'
  return (
    <div class="task" data-task={task}>
      <span class="task-name">{t.name_label}</span>
      <progress max={100} value={pct} aria-label={`${t.name_label} progress`}>
        {pct}%
      </progress>
      <span class="pct">{pct}%</span>
      <span class="status">{t.status}</span>
      {cancellable && (
        <button type="button" onClick={() => call('task.cancel', task).catch((e) => setError(asApiError(e)))} aria-label={`Cancel ${t.name_label}`}>
          Cancel
        </button>
      )}
      <ErrorBox error={error} onClose={() => setError(null)} />
    </div>
  )
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" aria-labelledby={id ?? slug(title)}>
      <h2 id={id ?? slug(title)}>{title}</h2>
      {children}
    </section>
  )
}

const slug = (s: string) => 'h-' + s.toLowerCase().replace(/[^a-z0-9]+/g, '-')

export interface Series {
  label: string
  values: (number | null)[]
}

/** A line graph in SVG: no charting library, a few hundred bytes of code. */
export function Graph({ title, series, unit, max }: { title: string; series: Series[]; unit: (v: number) => string; max?: number }) {
  const W = 300
  const H = 80
  const n = Math.max(0, ...series.map((s) => s.values.length))
  const top = max ?? Math.max(1e-9, ...series.flatMap((s) => s.values.filter((v): v is number => v != null && isFinite(v))))
  const last = series.map((s) => s.values.filter((v) => v != null).at(-1) as number | undefined)
  const summary = series.map((s, i) => `${s.label} ${last[i] == null ? 'no data' : unit(last[i] as number)}`).join(', ')
  return (
    <figure class="graph">
      <figcaption>
        {title}: <span class="now">{summary}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${summary}`} preserveAspectRatio="none">
        {series.map((s, i) => {
          let d = ''
          s.values.forEach((v, x) => {
            if (v == null || !isFinite(v)) return
            const px = n > 1 ? (x / (n - 1)) * W : 0
            const py = H - (Math.min(v, top) / top) * (H - 4) - 2
            d += `${d === '' || s.values[x - 1] == null ? 'M' : 'L'}${px.toFixed(1)},${py.toFixed(1)}`
          })
          return <path key={s.label} d={d} class={`line l${i % 4}`} />
        })}
      </svg>
    </figure>
  )
}

/** Re-runs `f` every `ms` while mounted (for graphs only; lists come by events). */
export function useInterval(f: () => void, ms: number, deps: unknown[]) {
  const saved = useRef(f)
  saved.current = f
  useEffect(() => {
    saved.current()
    const id = setInterval(() => saved.current(), ms)
    return () => clearInterval(id)
  }, deps)
}
