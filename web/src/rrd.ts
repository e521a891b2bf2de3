// /rrd_updates in xapi's JSON form: series per "CF:kind:uuid:name" column.
import { session, ApiError } from './api'

export interface Updates {
  times: number[]
  columns: Map<string, (number | null)[]>
}

export async function rrdUpdates(seconds: number, opts: { host?: boolean; vm?: string; vms?: string[] }): Promise<Updates> {
  const start = Math.floor(Date.now() / 1000) - seconds
  const q = new URLSearchParams({ session_id: session ?? '', start: String(start), cf: 'AVERAGE', json: 'true' })
  if (opts.host) q.set('host', 'true')
  if (opts.vm) q.set('vm_uuid', opts.vm)
  for (const u of opts.vms ?? []) q.append('vm_uuid', u)
  const res = await fetch('/rrd_updates?' + q.toString())
  if (!res.ok) throw new ApiError('HTTP_' + res.status, [res.statusText])
  const j = await res.json()
  const legend: string[] = j.meta?.legend ?? []
  const rows: any[] = [...(j.data ?? [])].sort((a, b) => Number(a.t) - Number(b.t))
  const columns = new Map<string, (number | null)[]>()
  legend.forEach((name, i) =>
    columns.set(
      name,
      rows.map((r) => {
        const v = Number(r.values?.[i])
        return isFinite(v) ? v : null
      }),
    ),
  )
  return { times: rows.map((r) => Number(r.t)), columns }
}

/** Columns whose name (after CF:kind:uuid:) matches, for one object. */
export function pick(u: Updates, uuid: string, re: RegExp): [string, (number | null)[]][] {
  return [...u.columns].filter(([k]) => {
    const p = k.split(':')
    return p[2] === uuid && re.test(p.slice(3).join(':'))
  }).map(([k, v]) => [k.split(':').slice(3).join(':'), v])
}

export function sum(cols: (number | null)[][]): (number | null)[] {
  const n = Math.max(0, ...cols.map((c) => c.length))
  return Array.from({ length: n }, (_, i) => {
    let s: number | null = null
    for (const c of cols) if (c[i] != null) s = (s ?? 0) + (c[i] as number)
    return s
  })
}
