import { useState } from 'preact/hooks'
import { call, db, bytes, session, waitTask, refsOf, asApiError, ApiError, isVm, type Ref } from './api'
import { ErrorBox, Graph, Section, TaskRow, useAction, useDb, useInterval, type Series } from './ui'
import { rrdUpdates, pick, sum } from './rrd'

/** The pool and its host, with graphs from the host's RRD. */
export function Overview() {
  useDb()
  const pool = [...db.table('pool').values()][0]
  const [hostRef, host] = [...db.table('host')][0] ?? []
  const hm = db.get('host_metrics', host?.metrics)
  const vms = [...db.table('vm').values()].filter(isVm)
  const running = vms.filter((v) => v.power_state === 'Running').length
  const [graphs, setGraphs] = useState<Record<string, Series[]> | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const uuid = host?.uuid
  useInterval(
    () => {
      if (!uuid) return
      rrdUpdates(600, { host: true })
        .then((u) => {
          const cpus = pick(u, uuid, /^cpu\d+$/).map(([, v]) => v)
          const total = pick(u, uuid, /^memory_total_kib$/)[0]?.[1] ?? []
          const free = pick(u, uuid, /^memory_free_kib$/)[0]?.[1] ?? []
          setGraphs({
            cpu: [{ label: 'CPU', values: sum(cpus).map((v) => (v == null ? null : (v / Math.max(1, cpus.length)) * 100)) }],
            mem: [{ label: 'used', values: total.map((t, i) => (t == null || free[i] == null ? null : (t - (free[i] as number)) * 1024)) }],
            net: [
              { label: 'receive', values: sum(pick(u, uuid, /^pif_.*_rx$/).map(([, v]) => v)) },
              { label: 'send', values: sum(pick(u, uuid, /^pif_.*_tx$/).map(([, v]) => v)) },
            ],
            disk: [
              { label: 'read', values: sum(pick(u, uuid, /^(io_throughput_read|read_|vbd_.*_read$)/).map(([, v]) => v)) },
              { label: 'write', values: sum(pick(u, uuid, /^(io_throughput_write|write_|vbd_.*_write$)/).map(([, v]) => v)) },
            ],
          })
          setError(null)
        })
        .catch((e) => setError(asApiError(e)))
    },
    5000,
    [uuid],
  )
  return (
    <div>
      <h1>{pool?.name_label || 'Pool'}</h1>
      <Section title="Host">
        {host ? (
          <dl class="facts">
            <dt>Name</dt>
            <dd>{host.name_label}</dd>
            <dt>Address</dt>
            <dd>{host.address}</dd>
            <dt>Version</dt>
            <dd>{host.software_version?.product_version ?? host.API_version_major + '.' + host.API_version_minor}</dd>
            <dt>CPUs</dt>
            <dd>{host.cpu_info?.cpu_count ?? (host.host_CPUs ?? []).length}</dd>
            <dt>Memory</dt>
            <dd>{hm ? `${bytes(Number(hm.memory_total) - Number(hm.memory_free))} used of ${bytes(hm.memory_total)}` : ''}</dd>
            <dt>VMs</dt>
            <dd>
              {running} running of {vms.length}
            </dd>
            <dt>Enabled</dt>
            <dd>{host.enabled ? 'yes' : 'no'}</dd>
          </dl>
        ) : (
          <p>No host.</p>
        )}
        <span hidden>{hostRef}</span>
      </Section>
      <Section title="Host statistics">
        <ErrorBox error={error} />
        {graphs ? (
          <div class="graphs">
            <Graph title="CPU" series={graphs.cpu} unit={(v) => `${v.toFixed(0)}%`} max={100} />
            <Graph title="Memory" series={graphs.mem} unit={bytes} />
            <Graph title="Network" series={graphs.net} unit={(v) => bytes(v) + '/s'} />
            <Graph title="Disk" series={graphs.disk} unit={(v) => bytes(v) + '/s'} />
          </div>
        ) : (
          <p role="status">Loading statistics…</p>
        )}
      </Section>
    </div>
  )
}

export function Storage() {
  useDb()
  const [open, setOpen] = useState<Ref | null>(null)
  const srs = [...db.table('sr')].sort((a, b) => String(a[1].name_label).localeCompare(String(b[1].name_label)))
  const vdis = open ? [...db.table('vdi')].filter(([, v]) => v.SR === open) : []
  return (
    <div>
      <h1>Storage</h1>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Usage</th>
            <th scope="col">Disks</th>
          </tr>
        </thead>
        <tbody>
          {srs.map(([r, s]) => {
            const size = Number(s.physical_size)
            const used = Number(s.physical_utilisation)
            return (
              <tr key={r}>
                <td>
                  <button type="button" class="link" aria-expanded={open === r} onClick={() => setOpen(open === r ? null : r)}>
                    {s.name_label}
                  </button>
                </td>
                <td>{s.type}</td>
                <td>
                  <meter min={0} max={size || 1} value={used} aria-label={`${s.name_label} usage`} /> {bytes(used)} of {bytes(size)}
                </td>
                <td>{(s.VDIs ?? []).length}</td>
              </tr>
            )
          })}
        </tbody>
      </table>
      {open && (
        <Section title={`Disks on ${db.get('sr', open)?.name_label}`} id="h-vdis">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Size</th>
                <th scope="col">Used</th>
                <th scope="col">Attached to</th>
              </tr>
            </thead>
            <tbody>
              {vdis.map(([r, v]) => (
                <tr key={r}>
                  <td>{v.name_label}</td>
                  <td>{bytes(v.virtual_size)}</td>
                  <td>{bytes(v.physical_utilisation)}</td>
                  <td>
                    {(v.VBDs as Ref[])
                      .map((b) => db.get('vm', db.get('vbd', b)?.VM)?.name_label)
                      .filter(Boolean)
                      .join(', ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
    </div>
  )
}

export function Networks() {
  useDb()
  const nets = [...db.table('network')]
  return (
    <div>
      <h1>Networks</h1>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Bridge</th>
            <th scope="col">MTU</th>
            <th scope="col">Host interfaces</th>
            <th scope="col">VIFs</th>
          </tr>
        </thead>
        <tbody>
          {nets.map(([r, n]) => (
            <tr key={r}>
              <td>{n.name_label}</td>
              <td>{n.bridge}</td>
              <td>{n.MTU}</td>
              <td>
                {(n.PIFs as Ref[])
                  .map((p) => db.get('pif', p))
                  .filter(Boolean)
                  .map((p) => `${p!.device}${Number(p!.VLAN) >= 0 ? ` (VLAN ${p!.VLAN})` : ''}`)
                  .join(', ')}
              </td>
              <td>{(n.VIFs ?? []).length}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function Tasks() {
  useDb()
  const tasks = [...db.table('task')].sort((a, b) => String(b[1].created).localeCompare(String(a[1].created)))
  return (
    <div>
      <h1>Tasks</h1>
      {tasks.length === 0 && <p>No tasks.</p>}
      <ul class="tasklist">
        {tasks.map(([r, t]) => (
          <li key={r}>
            <TaskRow task={r} />
            {t.status === 'failure' && <ErrorBox error={new ApiError((t.error_info ?? [])[0] ?? 'INTERNAL_ERROR', (t.error_info ?? []).slice(1))} />}
          </li>
        ))}
      </ul>
    </div>
  )
}

export function Messages() {
  useDb()
  const msgs = [...db.table('message')].sort((a, b) => String(b[1].timestamp).localeCompare(String(a[1].timestamp)))
  const [run, busy, error, clear] = useAction()
  return (
    <div>
      <h1>Messages</h1>
      <ErrorBox error={error} onClose={clear} />
      {msgs.length === 0 && <p>No messages.</p>}
      <table>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Priority</th>
            <th scope="col">Name</th>
            <th scope="col">About</th>
            <th scope="col">Body</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {msgs.map(([r, m]) => (
            <tr key={r}>
              <td>{String(m.timestamp)}</td>
              <td>{m.priority}</td>
              <td>{m.name}</td>
              <td>
                {m.cls} {m.obj_uuid}
              </td>
              <td class="body">{m.body}</td>
              <td>
                <button type="button" disabled={busy} onClick={() => run(() => call('message.destroy', r))}>
                  Dismiss
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

/** Import an XVA from a file: PUT /import with upload progress, then the task. */
export function ImportPage() {
  useDb()
  const srs = [...db.table('sr')].filter(([, s]) => s.content_type !== 'iso' && (s.allowed_operations ?? []).includes('vdi_create'))
  const defaultSr = [...db.table('pool').values()][0]?.default_SR
  const [sr, setSr] = useState('')
  const target = sr || (srs.some(([r]) => r === defaultSr) ? defaultSr : srs[0]?.[0]) || ''
  const [file, setFile] = useState<File | null>(null)
  const [sent, setSent] = useState<number | null>(null)
  const [task, setTask] = useState<Ref | null>(null)
  const [done, setDone] = useState<string[]>([])
  const [run, busy, error, clear] = useAction()
  const submit = (e: Event) => {
    e.preventDefault()
    if (!file) return
    run(async () => {
      setDone([])
      const t: Ref = await call('task.create', `Import of ${file.name}`, '')
      setTask(t)
      const q = new URLSearchParams({ session_id: session ?? '', task_id: t, sr_id: target })
      await upload('/import?' + q.toString(), file, (n) => setSent(n))
      const result = await waitTask(t)
      const uuids: string[] = []
      for (const vm of refsOf(result)) uuids.push(await call('VM.get_uuid', vm))
      setDone(uuids)
    })
  }
  return (
    <form class="card form" onSubmit={submit} aria-labelledby="import-title">
      <h1 id="import-title">Import a VM</h1>
      <label>
        XVA file
        <input type="file" name="file" accept=".xva,application/octet-stream" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} required />
      </label>
      <label>
        Storage
        <select value={target} onChange={(e) => setSr(e.currentTarget.value)}>
          {srs.map(([r, s]) => (
            <option key={r} value={r}>
              {s.name_label}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={busy || !file}>
        Import
      </button>
      {sent != null && file && (
        <div class="upload">
          Upload{' '}
          <progress max={file.size || 1} value={sent} aria-label="Upload progress">
            {Math.round((sent / (file.size || 1)) * 100)}%
          </progress>{' '}
          {bytes(sent)} of {bytes(file.size)}
        </div>
      )}
      {task && <TaskRow task={task} />}
      {done.map((u) => (
        <p key={u} class="imported">
          Imported: <a href={`#/vm/${u}`}>{db.get('vm', [...db.table('vm')].find(([, v]) => v.uuid === u)?.[0])?.name_label ?? u}</a>
        </p>
      ))}
      <ErrorBox error={error} onClose={clear} />
    </form>
  )
}

/** XMLHttpRequest, because fetch() reports no upload progress. */
function upload(url: string, file: File, progress: (n: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest()
    x.open('PUT', url)
    x.upload.onprogress = (e) => progress(e.loaded)
    x.onload = () => {
      progress(file.size)
      if (x.status >= 200 && x.status < 300) resolve()
      else reject(errorFromPage(x.status, x.responseText))
    }
    x.onerror = () => reject(new ApiError('CONNECTION_FAILED', ['the upload was interrupted']))
    x.send(file)
  })
}

/** xapi's HTTP error pages name the XenAPI error; else the HTTP status. */
function errorFromPage(status: number, text: string): ApiError {
  const m = /\b([A-Z][A-Z0-9_]{3,})\b/.exec(text.replace(/<h1>[\s\S]*?<\/h1>/, '').replace(/<[^>]*>/g, ' '))
  return new ApiError(m ? m[1] : 'HTTP_' + status, [])
}
