import { useMemo, useRef, useState, useEffect } from 'preact/hooks'
import { call, db, isVm, vmIps, bytes, runAsync, refsOf, type Rec, type Ref } from './api'
import { ErrorBox, TaskRow, useAction, useDb, useInterval } from './ui'
import { rrdUpdates, pick, sum } from './rrd'

const ROW = 40

/** The VM list: live by events, only the visible rows in the DOM. */
export function VmList() {
  const version = useDb()
  const [filter, setFilter] = useState('')
  const [scroll, setScroll] = useState(0)
  const [height, setHeight] = useState(600)
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const el = box.current
    if (!el) return
    const ro = new ResizeObserver(() => setHeight(el.clientHeight))
    ro.observe(el)
    return () => ro.disconnect()
  }, [])
  const vms = useMemo(() => {
    const f = filter.trim().toLowerCase()
    const out: [Ref, Rec][] = []
    for (const [r, vm] of db.table('vm')) {
      if (isVm(vm) && (!f || String(vm.name_label).toLowerCase().includes(f))) out.push([r, vm])
    }
    return out.sort((a, b) => String(a[1].name_label).localeCompare(String(b[1].name_label)) || a[1].uuid.localeCompare(b[1].uuid))
  }, [version, filter])
  const first = Math.max(0, Math.floor(scroll / ROW) - 5)
  const last = Math.min(vms.length, Math.ceil((scroll + height) / ROW) + 5)
  const visible = vms.slice(first, last)
  // Sparklines for the running VMs on screen only: one small /rrd_updates.
  const running = visible.filter(([, v]) => v.power_state === 'Running').map(([, v]) => v.uuid as string)
  const key = running.join(',')
  const [sparks, setSparks] = useState<Map<string, { cpu: (number | null)[]; mem: (number | null)[] }>>(new Map())
  useInterval(
    () => {
      if (!key) return
      const uuids = key.split(',')
      rrdUpdates(300, { vms: uuids })
        .then((u) => {
          const m = new Map<string, { cpu: (number | null)[]; mem: (number | null)[] }>()
          for (const id of uuids) {
            const cpus = pick(u, id, /^cpu\d+$/).map(([, v]) => v)
            const n = Math.max(1, cpus.length)
            m.set(id, { cpu: sum(cpus).map((v) => (v == null ? null : v / n)), mem: pick(u, id, /^memory$/)[0]?.[1] ?? [] })
          }
          setSparks(m)
        })
        // Sparklines are decoration: a failed read leaves the last ones.
        .catch(() => undefined)
    },
    10000,
    [key],
  )
  return (
    <div class="vmlist">
      <div class="toolbar">
        <h1>Virtual machines</h1>
        <label>
          Filter <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>
        <span role="status" class="count">
          {vms.length} VMs
        </span>
        <a class="button" href="#/new">
          New VM
        </a>
      </div>
      <div class="table" role="table" aria-label="Virtual machines" aria-rowcount={vms.length + 1}>
        <div class="row head" role="row" aria-rowindex={1}>
          <span role="columnheader">Name</span>
          <span role="columnheader">Power state</span>
          <span role="columnheader">IP addresses</span>
          <span role="columnheader" class="wide">
            vCPUs / memory
          </span>
          <span role="columnheader" class="wide">
            CPU · memory
          </span>
        </div>
        <div class="rows" ref={box} onScroll={(e) => setScroll(e.currentTarget.scrollTop)} role="rowgroup">
          {vms.length === 0 && (
            <p class="empty" role="row">
              <span role="cell">{filter ? 'No VM matches the filter.' : 'No VMs yet: make one with New VM, or import one.'}</span>
            </p>
          )}
          <div style={{ height: `${vms.length * ROW}px`, position: 'relative' }}>
            {visible.map(([ref, vm], i) => (
              <div
                class="row"
                role="row"
                key={ref}
                aria-rowindex={first + i + 2}
                data-uuid={vm.uuid}
                style={{ top: `${(first + i) * ROW}px` }}
              >
                <span role="cell" class="name">
                  <a href={`#/vm/${vm.uuid}`}>{vm.name_label || '(no name)'}</a>
                </span>
                <span role="cell">
                  <span class={`state ${vm.power_state}`}>{vm.power_state}</span>
                </span>
                <span role="cell" class="ips">
                  {vmIps(vm).join(', ')}
                </span>
                <span role="cell" class="wide">
                  {vm.VCPUs_max} / {bytes(vm.memory_static_max)}
                </span>
                <span role="cell" class="wide sparks">
                  {vm.power_state === 'Running' && sparks.get(vm.uuid) && (
                    <>
                      <Spark values={sparks.get(vm.uuid)!.cpu} max={1} label={`CPU of ${vm.name_label}`} fmt={(v) => `${Math.round(v * 100)}%`} />
                      <Spark values={sparks.get(vm.uuid)!.mem} label={`Memory of ${vm.name_label}`} fmt={bytes} />
                    </>
                  )}
                </span>
              </div>
            ))}
          </div>
        </div>
      </div>
    </div>
  )
}

/** A 60×20 line of the last values, its newest value as the accessible name. */
function Spark({ values, max, label, fmt }: { values: (number | null)[]; max?: number; label: string; fmt: (v: number) => string }) {
  const pts = values.map((v, i) => [i, v] as const).filter((p): p is readonly [number, number] => p[1] != null && isFinite(p[1]))
  const top = max ?? Math.max(1e-9, ...pts.map(([, v]) => v))
  const n = Math.max(1, values.length - 1)
  const y = (v: number) => (19 - (Math.min(v, top) / top) * 18).toFixed(1)
  // A single sample is drawn as a level line, else nothing would show.
  const d =
    pts.length === 1
      ? `M0,${y(pts[0][1])}L60,${y(pts[0][1])}`
      : pts.map(([i, v], k) => `${k ? 'L' : 'M'}${((i / n) * 60).toFixed(1)},${y(v)}`).join('')
  const now = pts.at(-1)?.[1]
  return (
    <svg class="spark" viewBox="0 0 60 20" role="img" aria-label={`${label}: ${now == null ? 'no data' : fmt(now)}`}>
      <path d={d} class="line l0" />
    </svg>
  )
}

/** One disk of a template's `other_config:disks` provision spec. */
type ProvDisk = { device: string; size: number; bootable: string; type: string }

const GIB = 1024 * 1024 * 1024

function templateDisks(xml: string | undefined): ProvDisk[] {
  if (!xml) return []
  const doc = new DOMParser().parseFromString(xml, 'application/xml')
  return [...doc.getElementsByTagName('disk')].map((d) => ({
    device: d.getAttribute('device') ?? '0',
    size: Number(d.getAttribute('size') ?? 0),
    bootable: d.getAttribute('bootable') ?? 'false',
    type: d.getAttribute('type') ?? 'system',
  }))
}

/** The provision spec VM.provision reads, every disk on `sr` (a uuid). */
function provisionXml(disks: ProvDisk[], sr: string): string {
  const attr = (v: string) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
  const one = (d: ProvDisk) =>
    `<disk device="${attr(d.device)}" size="${d.size}" sr="${attr(sr)}" bootable="${attr(d.bootable)}" type="${attr(d.type)}"/>`
  return `<provision>${disks.map(one).join('')}</provision>`
}

/** A new VM from a template: clone, size, provision disks, a NIC, an ISO. */
export function NewVm() {
  useDb()
  const templates = [...db.table('vm')]
    .filter(([, v]) => v.is_a_template && !v.is_a_snapshot)
    .sort((a, b) => String(a[1].name_label).localeCompare(String(b[1].name_label)))
  const networks = [...db.table('network')].filter(([, n]) => !(n.other_config?.is_host_internal_management_network === 'true'))
  const isos = [...db.table('vdi')].filter(([, v]) => db.get('sr', v.SR)?.content_type === 'iso')
  const [tpl, setTpl] = useState('')
  const [name, setName] = useState('')
  const [cpus, setCpus] = useState(1)
  const [mem, setMem] = useState(1024)
  const [net, setNet] = useState('')
  const [iso, setIso] = useState('')
  const [task, setTask] = useState<Ref | null>(null)
  const [edited, setDisks] = useState<ProvDisk[] | null>(null)
  const [run, busy, error, clear] = useAction()
  const chosen = tpl || templates[0]?.[0] || ''
  const network = net || networks[0]?.[0] || ''
  // The template's disks until the user changes them.
  const disks = edited ?? templateDisks(db.get('vm', chosen)?.other_config?.disks)
  const setSize = (i: number, gib: number) =>
    setDisks(disks.map((d, j) => (j === i ? { ...d, size: Math.round(gib * GIB) } : d)))
  const addDisk = () => {
    const used = new Set(disks.map((d) => d.device))
    let n = 0
    while (used.has(String(n)) || n === 3) n++ // 3 is the CD drive's place
    setDisks([...disks, { device: String(n), size: 10 * GIB, bootable: 'false', type: 'system' }])
  }
  const submit = (e: Event) => {
    e.preventDefault()
    run(async () => {
      const clone = refsOf(await runAsync('VM.clone', [chosen, name], setTask))[0]
      if (!clone) throw new Error('VM.clone returned no VM')
      // vm-install's rule: the disks go to the default SR.
      const sr = db.get('pool', [...db.table('pool').keys()][0])?.default_SR
      const srUuid = sr && sr !== 'OpaqueRef:NULL' ? String(db.get('sr', sr)?.uuid ?? '') : ''
      const oc = (await call('VM.get_other_config', clone)) as Record<string, string>
      if (disks.length || oc.disks) await call('VM.set_other_config', clone, { ...oc, disks: provisionXml(disks, srUuid) })
      await runAsync('VM.provision', [clone], setTask)
      await call('VM.set_is_a_template', clone, false)
      const m = String(mem * 1024 * 1024)
      await call('VM.set_memory_limits', clone, m, m, m, m)
      await call('VM.set_VCPUs_max', clone, String(cpus))
      await call('VM.set_VCPUs_at_startup', clone, String(cpus))
      if (network) await createVif(clone, network)
      if (iso) await insertCd(clone, iso)
      const uuid = await call('VM.get_uuid', clone)
      location.hash = `#/vm/${uuid}`
    })
  }
  return (
    <form class="card form" onSubmit={submit} aria-labelledby="new-title">
      <h1 id="new-title">New VM</h1>
      <label>
        Template
        <select
          value={chosen}
          onChange={(e) => {
            setTpl(e.currentTarget.value)
            setDisks(null)
          }}
        >
          {templates.map(([r, t]) => (
            <option key={r} value={r}>
              {t.name_label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Name
        <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
      </label>
      <label>
        vCPUs
        <input type="number" min={1} max={64} value={cpus} onInput={(e) => setCpus(Number(e.currentTarget.value))} />
      </label>
      <label>
        Memory (MiB)
        <input type="number" min={16} step={16} value={mem} onInput={(e) => setMem(Number(e.currentTarget.value))} />
      </label>
      <fieldset class="disks">
        <legend>Disks</legend>
        {disks.length === 0 && <p>No disks.</p>}
        {disks.map((d, i) => (
          <div class="disk-row" key={d.device}>
            <label>
              Disk {d.device} size (GiB)
              <input
                type="number"
                min={1}
                step={1}
                value={Math.round(d.size / GIB)}
                onInput={(e) => setSize(i, Number(e.currentTarget.value))}
              />
            </label>
            <button type="button" onClick={() => setDisks(disks.filter((_, j) => j !== i))} aria-label={`Remove disk ${d.device}`}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" onClick={addDisk}>
          Add a disk
        </button>
      </fieldset>
      <label>
        Network
        <select value={network} onChange={(e) => setNet(e.currentTarget.value)}>
          <option value="">(none)</option>
          {networks.map(([r, n]) => (
            <option key={r} value={r}>
              {n.name_label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Installation ISO
        <select value={iso} onChange={(e) => setIso(e.currentTarget.value)}>
          <option value="">(none)</option>
          {isos.map(([r, v]) => (
            <option key={r} value={r}>
              {v.name_label}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={busy || !chosen}>
        {busy ? 'Creating…' : 'Create'}
      </button>
      {busy && task && <TaskRow task={task} />}
      <ErrorBox error={error} onClose={clear} />
    </form>
  )
}

export async function createVif(vm: Ref, network: Ref): Promise<Ref> {
  const devices: string[] = await call('VM.get_allowed_VIF_devices', vm)
  if (!devices.length) throw new Error('no free VIF device')
  const vif = await call('VIF.create', {
    device: devices[0],
    network,
    VM: vm,
    MAC: '',
    MTU: '1500',
    other_config: {},
    qos_algorithm_type: '',
    qos_algorithm_params: {},
  })
  if (db.get('vm', vm)?.power_state === 'Running') await call('VIF.plug', vif)
  return vif
}

/** Puts an ISO in the VM's CD drive, making the drive if it has none. */
export async function insertCd(vm: Ref, vdi: Ref): Promise<void> {
  const rec = await call('VM.get_record', vm)
  for (const vbd of rec.VBDs as Ref[]) {
    const b = await call('VBD.get_record', vbd)
    if (b.type === 'CD') {
      if (!b.empty) await call('VBD.eject', vbd)
      await call('VBD.insert', vbd, vdi)
      return
    }
  }
  const devices: string[] = await call('VM.get_allowed_VBD_devices', vm)
  if (!devices.length) throw new Error('no free VBD device')
  await call('VBD.create', {
    VM: vm,
    VDI: vdi,
    userdevice: devices[0],
    bootable: true,
    mode: 'RO',
    type: 'CD',
    empty: false,
    other_config: {},
    qos_algorithm_type: '',
    qos_algorithm_params: {},
  })
}
