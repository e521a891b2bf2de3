import { useEffect, useRef, useState } from 'preact/hooks'
import { call, db, runAsync, session, bytes, vmIps, asApiError, ApiError, type Rec, type Ref } from './api'
import { ErrorBox, Graph, Section, TaskRow, useAction, useDb, useInterval, type Series } from './ui'
import { createVif, insertCd } from './vms'
import { rrdUpdates, pick, sum } from './rrd'

const POWER: [string, string, string][] = [
  // [label, message, operation that must be allowed]
  ['Start', 'VM.start', 'start'],
  ['Shut down', 'VM.clean_shutdown', 'clean_shutdown'],
  ['Force shut down', 'VM.hard_shutdown', 'hard_shutdown'],
  ['Reboot', 'VM.clean_reboot', 'clean_reboot'],
  ['Force reboot', 'VM.hard_reboot', 'hard_reboot'],
  ['Suspend', 'VM.suspend', 'suspend'],
  ['Resume', 'VM.resume', 'resume'],
  ['Pause', 'VM.pause', 'pause'],
  ['Unpause', 'VM.unpause', 'unpause'],
]

function byUuid(uuid: string): [Ref, Rec] | undefined {
  for (const e of db.table('vm')) if (e[1].uuid === uuid) return e
  return undefined
}

export function VmPage({ uuid }: { uuid: string }) {
  useDb()
  const found = byUuid(uuid)
  const [run, busy, error, clear] = useAction()
  if (!found) return <p role="alert">No VM with uuid {uuid}.</p>
  const [ref, vm] = found
  const allowed: string[] = vm.allowed_operations ?? []
  const power = (msg: string) =>
    run(() => {
      const args: unknown[] = [ref]
      if (msg === 'VM.start' || msg === 'VM.resume') args.push(false, false)
      return runAsync(msg, args)
    })
  const tasks = Object.keys(vm.current_operations ?? {})
  return (
    <div class="vmpage">
      <h1>
        {vm.name_label} <span class={`state ${vm.power_state}`}>{vm.power_state}</span>
      </h1>
      <p class="meta">
        {vm.VCPUs_max} vCPUs · {bytes(vm.memory_static_max)} · {vmIps(vm).join(', ') || 'no IP address'} · {vm.uuid}
      </p>
      <div class="actions" role="group" aria-label="Power actions">
        {POWER.map(([label, msg, op]) => (
          <button type="button" key={msg} disabled={busy || !allowed.includes(op)} onClick={() => power(msg)}>
            {label}
          </button>
        ))}
      </div>
      <div class="tasks" aria-live="polite">
        {tasks.map((t) => (
          <TaskRow key={t} task={t} />
        ))}
      </div>
      <ErrorBox error={error} onClose={clear} />
      {vm.power_state === 'Running' && <Console vm={ref} />}
      {vm.power_state === 'Running' && <VmGraphs uuid={vm.uuid} />}
      <Disks vm={ref} rec={vm} />
      <Vifs vm={ref} rec={vm} />
      <Snapshots vm={ref} rec={vm} />
      <Export vm={ref} rec={vm} />
    </div>
  )
}

function Console({ vm }: { vm: Ref }) {
  const box = useRef<HTMLDivElement>(null)
  const [status, setStatus] = useState('connecting')
  const rec = db.get('vm', vm)
  const con = (rec?.consoles as Ref[] | undefined)?.map((c) => [c, db.get('console', c)] as const).find(([, c]) => c?.protocol === 'rfb')
  const conRef = con?.[0]
  useEffect(() => {
    if (!conRef || !box.current || !session) return
    let rfb: any = null
    let gone = false
    // noVNC is loaded only when a console is opened (it is most of the code).
    import('@novnc/novnc')
      .then(({ default: RFB }) => {
        if (gone || !box.current) return
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
        const url = `${proto}//${location.host}/console?ref=${encodeURIComponent(conRef)}&session_id=${encodeURIComponent(session ?? '')}`
        rfb = new RFB(box.current, url, { wsProtocols: ['binary'] })
        rfb.scaleViewport = true
        rfb.addEventListener('connect', () => setStatus('connected'))
        rfb.addEventListener('disconnect', (e: any) => setStatus(e.detail?.clean ? 'disconnected' : 'connection lost'))
      })
      .catch((e) => setStatus('could not load the console: ' + String(e)))
    return () => {
      gone = true
      rfb?.disconnect()
    }
  }, [conRef])
  return (
    <Section title="Console">
      {conRef ? (
        <>
          <p role="status" class="console-status">
            Console {status}
          </p>
          <div class="console" ref={box} role="application" aria-label="VM console (keyboard goes to the VM when focused)" />
        </>
      ) : (
        <p>This VM has no graphical console.</p>
      )}
    </Section>
  )
}

function VmGraphs({ uuid }: { uuid: string }) {
  const [series, setSeries] = useState<{ cpu: Series[]; mem: Series[]; net: Series[]; disk: Series[] } | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  useInterval(
    () => {
      rrdUpdates(600, { vm: uuid })
        .then((u) => {
          const cpus = pick(u, uuid, /^cpu\d+$/).map(([, v]) => v)
          const n = Math.max(1, cpus.length)
          const mem = pick(u, uuid, /^memory$/)[0]?.[1] ?? []
          setSeries({
            cpu: [{ label: 'CPU', values: sum(cpus).map((v) => (v == null ? null : (v / n) * 100)) }],
            mem: [{ label: 'memory', values: mem }],
            net: [
              { label: 'receive', values: sum(pick(u, uuid, /^vif_\d+_rx$/).map(([, v]) => v)) },
              { label: 'send', values: sum(pick(u, uuid, /^vif_\d+_tx$/).map(([, v]) => v)) },
            ],
            disk: [
              { label: 'read', values: sum(pick(u, uuid, /^vbd_.*_read$/).map(([, v]) => v)) },
              { label: 'write', values: sum(pick(u, uuid, /^vbd_.*_write$/).map(([, v]) => v)) },
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
    <Section title="Statistics">
      <ErrorBox error={error} />
      {series && (
        <div class="graphs">
          <Graph title="CPU" series={series.cpu} unit={(v) => `${v.toFixed(0)}%`} max={100} />
          <Graph title="Memory" series={series.mem} unit={bytes} />
          <Graph title="Network" series={series.net} unit={(v) => bytes(v) + '/s'} />
          <Graph title="Disk" series={series.disk} unit={(v) => bytes(v) + '/s'} />
        </div>
      )}
    </Section>
  )
}

function Disks({ vm, rec }: { vm: Ref; rec: Rec }) {
  const [run, busy, error, clear] = useAction()
  const [name, setName] = useState('data')
  const [size, setSize] = useState(1)
  const srs = [...db.table('sr')].filter(([, s]) => s.content_type !== 'iso' && (s.allowed_operations ?? []).includes('vdi_create'))
  const defaultSr = [...db.table('pool').values()][0]?.default_SR
  const [sr, setSr] = useState('')
  const target = sr || (srs.some(([r]) => r === defaultSr) ? defaultSr : srs[0]?.[0]) || ''
  const isos = [...db.table('vdi')].filter(([, v]) => db.get('sr', v.SR)?.content_type === 'iso')
  const running = rec.power_state === 'Running'
  const vbds = (rec.VBDs as Ref[]).map((r) => [r, db.get('vbd', r)] as const).filter(([, b]) => b)
  vbds.sort((a, b) => Number(a[1]?.userdevice) - Number(b[1]?.userdevice))
  const add = (e: Event) => {
    e.preventDefault()
    run(async () => {
      const vdi = await call('VDI.create', {
        name_label: name,
        name_description: '',
        SR: target,
        virtual_size: String(Math.round(size * 1024 ** 3)),
        type: 'user',
        sharable: false,
        read_only: false,
        other_config: {},
        xenstore_data: {},
        sm_config: {},
        tags: [],
      })
      const devices: string[] = await call('VM.get_allowed_VBD_devices', vm)
      if (!devices.length) throw new ApiError('NO_MORE_VBD_DEVICES', [])
      const vbd = await call('VBD.create', {
        VM: vm,
        VDI: vdi,
        userdevice: devices[0],
        bootable: false,
        mode: 'RW',
        type: 'Disk',
        empty: false,
        other_config: {},
        qos_algorithm_type: '',
        qos_algorithm_params: {},
      })
      if (running) await call('VBD.plug', vbd)
    })
  }
  return (
    <Section title="Disks">
      <table>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Name</th>
            <th scope="col">Size</th>
            <th scope="col">Storage</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {vbds.map(([r, b]) => {
            const vdi = db.get('vdi', b!.VDI)
            return (
              <tr key={r}>
                <td>
                  {b!.type} {b!.userdevice}
                </td>
                <td>{b!.empty ? '(empty)' : vdi?.name_label}</td>
                <td>{vdi ? bytes(vdi.virtual_size) : ''}</td>
                <td>{vdi ? db.get('sr', vdi.SR)?.name_label : ''}</td>
                <td class="row-actions">
                  {b!.type === 'CD' ? (
                    <>
                      {!b!.empty && (
                        <button type="button" disabled={busy} onClick={() => run(() => call('VBD.eject', r))}>
                          Eject
                        </button>
                      )}
                      <select
                        aria-label={`Insert an ISO in CD ${b!.userdevice}`}
                        value=""
                        disabled={busy}
                        onChange={(e) => {
                          const v = e.currentTarget.value
                          if (v) run(() => insertCd(vm, v))
                        }}
                      >
                        <option value="">Insert ISO…</option>
                        {isos.map(([ir, iv]) => (
                          <option key={ir} value={ir}>
                            {iv.name_label}
                          </option>
                        ))}
                      </select>
                    </>
                  ) : (
                    vdi && (
                      <>
                        <button
                          type="button"
                          disabled={busy}
                          onClick={() => {
                            const gib = prompt('New size in GiB (only growing is possible)', String(Number(vdi.virtual_size) / 1024 ** 3))
                            if (gib) run(() => call(running ? 'VDI.resize_online' : 'VDI.resize', b!.VDI, String(Math.round(Number(gib) * 1024 ** 3))))
                          }}
                        >
                          Resize
                        </button>
                        <button
                          type="button"
                          disabled={busy || running}
                          onClick={() => confirm(`Detach ${vdi.name_label}? The disk itself is kept.`) && run(() => call('VBD.destroy', r))}
                        >
                          Detach
                        </button>
                      </>
                    )
                  )}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
      <form class="inline" onSubmit={add} aria-label="Add a disk">
        <label>
          Disk name <input value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        </label>
        <label>
          Size (GiB) <input type="number" min={0.001} step="any" value={size} onInput={(e) => setSize(Number(e.currentTarget.value))} />
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
        <button type="submit" disabled={busy || !target}>
          Add disk
        </button>
      </form>
      <ErrorBox error={error} onClose={clear} />
    </Section>
  )
}

function Vifs({ vm, rec }: { vm: Ref; rec: Rec }) {
  const [run, busy, error, clear] = useAction()
  const networks = [...db.table('network')]
  const [net, setNet] = useState('')
  const network = net || networks[0]?.[0] || ''
  const gm = db.get('vm_guest_metrics', rec.guest_metrics)
  const vifs = (rec.VIFs as Ref[]).map((r) => [r, db.get('vif', r)] as const).filter(([, v]) => v)
  return (
    <Section title="Network interfaces">
      <table>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Network</th>
            <th scope="col">MAC</th>
            <th scope="col">IP addresses</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {vifs.map(([r, v]) => (
            <tr key={r}>
              <td>{v!.device}</td>
              <td>{db.get('network', v!.network)?.name_label}</td>
              <td>{v!.MAC}</td>
              <td>
                {Object.entries((gm?.networks ?? {}) as Record<string, string>)
                  .filter(([k]) => k.startsWith(`${v!.device}/`))
                  .map(([, ip]) => ip)
                  .join(', ')}
              </td>
              <td>
                <button
                  type="button"
                  disabled={busy}
                  onClick={() =>
                    run(async () => {
                      if (v!.currently_attached) await call('VIF.unplug', r)
                      await call('VIF.destroy', r)
                    })
                  }
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="inline"
        aria-label="Add a network interface"
        onSubmit={(e) => {
          e.preventDefault()
          run(() => createVif(vm, network))
        }}
      >
        <label>
          Network
          <select value={network} onChange={(e) => setNet(e.currentTarget.value)}>
            {networks.map(([r, n]) => (
              <option key={r} value={r}>
                {n.name_label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy || !network}>
          Add interface
        </button>
      </form>
      <ErrorBox error={error} onClose={clear} />
    </Section>
  )
}

function Snapshots({ vm, rec }: { vm: Ref; rec: Rec }) {
  const [run, busy, error, clear] = useAction()
  const [name, setName] = useState('')
  const [task, setTask] = useState<Ref | null>(null)
  const snaps = (rec.snapshots as Ref[])
    .map((r) => [r, db.get('vm', r)] as const)
    .filter(([, s]) => s)
    .sort((a, b) => String(b[1]!.snapshot_time).localeCompare(String(a[1]!.snapshot_time)))
  return (
    <Section title="Snapshots">
      <ul class="snapshots">
        {snaps.map(([r, s]) => (
          <li key={r}>
            <span class="snap-name">{s!.name_label}</span> <time>{String(s!.snapshot_time)}</time>
            <button type="button" disabled={busy} onClick={() => run(() => runAsync('VM.revert', [r], setTask))} aria-label={`Revert to ${s!.name_label}`}>
              Revert
            </button>
            <button type="button" disabled={busy} onClick={() => run(() => deleteSnapshot(r))} aria-label={`Delete ${s!.name_label}`}>
              Delete
            </button>
          </li>
        ))}
        {snaps.length === 0 && <li>No snapshots.</li>}
      </ul>
      <form
        class="inline"
        aria-label="Take a snapshot"
        onSubmit={(e) => {
          e.preventDefault()
          run(async () => {
            await runAsync('VM.snapshot', [vm, name || `${rec.name_label} ${new Date().toISOString()}`], setTask)
            setName('')
          })
        }}
      >
        <label>
          Snapshot name <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          Take snapshot
        </button>
      </form>
      {busy && task && <TaskRow task={task} />}
      <ErrorBox error={error} onClose={clear} />
    </Section>
  )
}

/** A snapshot goes with its own disks, as Xen Orchestra deletes them. */
async function deleteSnapshot(snap: Ref) {
  const vbds: Ref[] = await call('VM.get_VBDs', snap)
  const vdis: Ref[] = []
  for (const b of vbds) {
    const r = await call('VBD.get_record', b)
    if (r.type === 'Disk' && !r.empty) vdis.push(r.VDI)
  }
  await call('VM.destroy', snap)
  for (const v of vdis) await call('VDI.destroy', v)
}

function Export({ vm, rec }: { vm: Ref; rec: Rec }) {
  const [task, setTask] = useState<Ref | null>(null)
  const [run, busy, error, clear] = useAction()
  const [url, setUrl] = useState<string | null>(null)
  const prepare = () =>
    run(async () => {
      // A task of our own, so the export's progress shows and can be cancelled.
      const t: Ref = await call('task.create', `Export of ${rec.name_label}`, '')
      setTask(t)
      const q = new URLSearchParams({ session_id: session ?? '', ref: vm, task_id: t, use_compression: 'zstd' })
      setUrl('/export?' + q.toString())
    })
  return (
    <Section title="Export">
      <p>Exports the VM as an XVA file (zstd compressed); a running VM cannot be exported.</p>
      {url ? (
        <a class="button" href={url} download={`${rec.name_label || 'vm'}.xva`} onClick={() => setTimeout(() => setUrl(null), 0)}>
          Download {rec.name_label}.xva
        </a>
      ) : (
        <button type="button" disabled={busy || rec.power_state !== 'Halted'} onClick={prepare}>
          Export to XVA
        </button>
      )}
      {task && <TaskRow task={task} />}
      <ErrorBox error={error} onClose={clear} />
    </Section>
  )
}
