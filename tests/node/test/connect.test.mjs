// connect() over JSON-RPC, XML-RPC and 'auto', the initial fetch of every
// object, and the fields Xen Orchestra's converters read (clients.md §1.2, §4.1).

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import {
  TRANSPORTS,
  DATETIME_RE,
  NULL_REF,
  startServer,
  freePort,
  waitForPort,
  makeClient,
  closeClient,
  rpcLog,
  objectsOfType,
  withTimeout,
  waitFor,
  semverAtLeast,
  isRef,
} from './helpers.mjs'

// The classes of issue 2 that have get_all_records in the real API
// (session, auth, event, user and data_source have none).
const EXPECTED_TYPES = [
  'Bond', 'Certificate', 'Feature', 'PBD', 'PIF', 'PIF_metrics', 'SM', 'SR', 'VBD', 'VBD_metrics',
  'VDI', 'VIF', 'VLAN', 'VM', 'VM_appliance', 'VM_guest_metrics', 'VM_metrics', 'VTPM', 'blob',
  'console', 'host', 'host_cpu', 'host_crashdump', 'host_metrics', 'message', 'network', 'pool',
  'pool_update', 'role', 'secret', 'subject', 'task', 'tunnel',
]

const REQUIRED_TEMPLATES = [
  'Debian Etch 4.0',
  'Debian Bookworm 12',
  'Ubuntu Noble Numbat 24.04',
  'Windows Server 2022 (64-bit)',
  'Other install media',
]

const XAPI_ROLES = ['pool-admin', 'pool-operator', 'vm-power-admin', 'vm-admin', 'vm-operator', 'read-only']

const isInt = v => (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v))
const isMap = v => v !== null && typeof v === 'object' && !Array.isArray(v)

// A datetime field: a "YYYYMMDDTHH:MM:SSZ" string over JSON-RPC, a Date
// (parsed from <dateTime.iso8601>) over XML-RPC.
function assertDatetime(v, what) {
  if (v instanceof Date) {
    assert.ok(!Number.isNaN(+v), `${what}: invalid date`)
  } else {
    assert.match(v, DATETIME_RE, what)
  }
}

// One server per transport; the three run side by side, the tests of each in
// order.
describe('connect', { concurrency: 3 }, () => {
  for (const transport of TRANSPORTS) {
    describe(`connect over ${transport}`, { concurrency: 1 }, () => {
      let server
      let xapi

      before(async () => {
        server = await startServer()
        xapi = makeClient(server.url, transport)
      })

      after(async () => {
        if (xapi !== undefined) await closeClient(xapi)
        await server?.stop()
      })

      it('connect() resolves and status is connected', async () => {
        await withTimeout(xapi.connect(), 10e3, 'connect()')
        assert.equal(xapi.status, 'connected')
        assert.ok(isRef(xapi.pool.$ref), 'pool ref')
      })

      it('sends the connect sequence XO sends (2-arg login, listMethods without session)', () => {
        const calls = rpcLog(xapi)
        const [login, pools, list] = calls
        assert.equal(login.method, 'session.login_with_password')
        assert.deepEqual(login.args, ['root', 'test-password'])
        assert.ok(isRef(login.result), 'login returns a session ref')
        assert.equal(pools.method, 'pool.get_all_records')
        assert.equal(list.method, 'system.listMethods')
        assert.deepEqual(list.args, [])
        assert.equal(list.error, undefined)
      })

      it('watches the types listed by system.listMethods', () => {
        const types = [...xapi._types].sort()
        for (const t of EXPECTED_TYPES) assert.ok(types.includes(t), `type ${t} among listMethods types`)
      })

      it('objectsFetched resolves without errors from the initial fetch or event.inject', async () => {
        await withTimeout(xapi.objectsFetched, 15e3, 'objectsFetched')
        const inject = rpcLog(xapi).find(c => c.method === 'event.inject')
        assert.ok(inject, 'event.inject was called')
        assert.equal(inject.error, undefined)
        assert.match(inject.result, /^\d{20},\d{20}$/)
        // Every get_all_records succeeds, except for classes xapi has removed.
        for (const c of rpcLog(xapi).filter(c => c.method.endsWith('.get_all_records'))) {
          if (c.error !== undefined) {
            assert.equal(c.error.code, 'MESSAGE_REMOVED', `${c.method}: ${c.error.message}`)
            assert.ok(['VBD_metrics.get_all_records'].includes(c.method), `${c.method} is not removed in xapi`)
          }
        }
      })

      it('the cache holds the seeded pool', () => {
        const all = Object.values(xapi.objects.all)
        const count = type => all.filter(o => o.$type === type).length
        assert.equal(count('pool'), 1)
        assert.equal(count('host'), 1)
        assert.equal(count('host_metrics'), 1)
        assert.ok(count('host_cpu') >= 1)
        assert.ok(count('VM') >= 1 + REQUIRED_TEMPLATES.length)
        assert.ok(count('VM_metrics') >= 1)
        assert.ok(count('SR') >= 2)
        assert.ok(count('PBD') >= 2)
        assert.ok(count('SM') >= 2)
        assert.ok(count('network') >= 1)
        assert.ok(count('PIF') >= 1)
        assert.ok(count('PIF_metrics') >= 1)
        assert.ok(count('role') >= XAPI_ROLES.length)
        // Objects are keyed by uuid and typed with the listMethods spelling.
        for (const o of all) {
          assert.ok(EXPECTED_TYPES.includes(o.$type), `unexpected type ${o.$type}`)
          assert.ok(isRef(o.$ref), `${o.$type} ref ${o.$ref}`)
          assert.equal(o.$id, o.uuid)
          assert.equal(xapi.getObjectByRef(o.$ref), o)
        }
      })

      it('pool has the fields xo-server reads', () => {
        const pool = xapi.pool
        assert.equal(objectsOfType(xapi, 'pool')[0], pool)
        assert.ok(isMap(pool.restrictions))
        assert.equal(pool.restrictions.restrict_zstd_export, 'false')
        // vTPMs are not implemented: the pool restricts them, so XO does not offer them. CBT works.
        assert.equal(pool.restrictions.restrict_vtpm, 'true')
        assert.equal(pool.restrictions.restrict_cbt, 'false')
        assert.ok(Array.isArray(pool.ha_statefiles))
        assert.ok(isMap(pool.cpu_info))
        assert.ok(isInt(pool.cpu_info.cpu_count))
        assert.ok(isInt(pool.cpu_info.socket_count))
        assert.ok(isMap(pool.other_config))
        assert.equal(typeof pool.name_label, 'string')
        assert.ok(Array.isArray(pool.tags))
        assert.ok(isMap(pool.current_operations))
        assert.equal(typeof pool.migration_compression, 'boolean')
        assert.equal(typeof pool.ha_enabled, 'boolean')
        // The master must be in the cache: XO reads $master.software_version.
        const master = pool.$master
        assert.ok(master, 'pool.$master resolves')
        assert.equal(master.$type, 'host')
        assert.ok(semverAtLeast(master.software_version.platform_version, '3.0.0'))
        // default_SR is the local ext SR.
        const sr = pool.$default_SR
        assert.ok(sr, 'pool.$default_SR resolves')
        assert.equal(sr.type, 'ext')
      })

      it('host has the fields xo-server, XO Lite and XenCenter read', () => {
        const [host] = objectsOfType(xapi, 'host')
        const sv = host.software_version
        assert.ok(isMap(sv))
        for (const k of ['product_brand', 'product_version', 'build_number', 'xapi', 'platform_version']) {
          assert.equal(typeof sv[k], 'string', `software_version.${k}`)
          assert.notEqual(sv[k], '', `software_version.${k}`)
        }
        assert.ok(semverAtLeast(sv.platform_version, '3.0.0'), `platform_version ${sv.platform_version} is semver >= 3.0.0`)
        // xo-server's legacy parse: any key with ':' needs "desc, version X".
        for (const [k, v] of Object.entries(sv)) {
          if (k.includes(':')) assert.match(v, /, version /, `software_version.${k}`)
        }
        assert.equal(Number(host.API_version_major), 2)
        assert.ok(Number(host.API_version_minor) >= 6)

        assert.ok(isMap(host.license_params))
        assert.match(host.license_params.expiry, DATETIME_RE)
        assert.equal(host.license_params.restrict_zstd_export, 'false')
        for (const [k, v] of Object.entries(host.license_params)) {
          // Everything is licensed but what is not implemented (vTPMs).
          const unavailable = k === 'restrict_vtpm'
          if (k.startsWith('restrict_')) assert.equal(v, unavailable ? 'true' : 'false', `license_params.${k}`)
        }

        assert.ok(isMap(host.chipset_info))
        assert.ok(Array.isArray(host.capabilities))
        assert.ok(host.capabilities.some(c => c.startsWith('hvm')), 'an hvm capability')
        assert.ok(isMap(host.cpu_info))
        assert.ok(Number(host.cpu_info.cpu_count) >= 1)
        assert.ok(Number(host.cpu_info.socket_count) >= 1)
        assert.equal(host.host_CPUs.length, Number(host.cpu_info.cpu_count))
        for (const ref of host.host_CPUs) assert.equal(xapi.getObjectByRef(ref).$type, 'host_cpu')

        const metrics = host.$metrics
        assert.ok(metrics, 'host.$metrics resolves')
        assert.equal(metrics.$type, 'host_metrics')
        assert.equal(metrics.live, true)
        assert.ok(isInt(metrics.memory_total) && Number(metrics.memory_total) > 0)
        assert.ok(isInt(metrics.memory_free) && Number(metrics.memory_free) >= 0)
        assert.ok(Number(metrics.memory_free) <= Number(metrics.memory_total))
        assertDatetime(metrics.last_updated, 'host_metrics.last_updated')

        for (const k of ['boot_time', 'agent_start_time']) {
          const t = Number(host.other_config[k])
          assert.ok(Number.isFinite(t) && t > 0, `other_config.${k} = ${host.other_config[k]}`)
          assert.ok(t <= Date.now() / 1e3 + 60, `other_config.${k} not in the future`)
        }

        assert.ok(isMap(host.bios_strings))
        assert.equal(typeof host.address, 'string')
        assert.notEqual(host.address, '')
        assert.equal(typeof host.hostname, 'string')
        assert.notEqual(host.hostname, '')
        assert.equal(host.enabled, true)
        assert.equal(typeof host.power_on_mode, 'string')
        assert.ok(isMap(host.logging))
        assert.equal(typeof host.iscsi_iqn, 'string')
        for (const k of ['updates_requiring_reboot', 'PIFs', 'PCIs', 'PGPUs', 'PBDs', 'patches', 'resident_VMs', 'certificates']) {
          assert.ok(Array.isArray(host[k]), `host.${k} is an array`)
        }
      })

      it('the control domain and the default templates', () => {
        const [host] = objectsOfType(xapi, 'host')
        const vms = objectsOfType(xapi, 'VM')
        const doms0 = vms.filter(vm => vm.is_control_domain)
        assert.equal(doms0.length, 1)
        const [dom0] = doms0
        assert.equal(dom0.power_state, 'Running')
        assert.equal(dom0.is_a_template, false)
        assert.equal(dom0.resident_on, host.$ref)
        assert.ok(host.resident_VMs.includes(dom0.$ref))
        assert.equal(host.control_domain, dom0.$ref)

        const templates = vms.filter(vm => vm.is_a_template)
        const names = templates.map(vm => vm.name_label)
        for (const name of REQUIRED_TEMPLATES) assert.ok(names.includes(name), `template ${name}`)
        for (const tpl of templates.filter(vm => vm.other_config.default_template === 'true')) {
          assert.equal(tpl.power_state, 'Halted')
          assert.match(tpl.other_config.disks, /^<provision><disk [^>]*bootable="true"[^>]*\/><\/provision>$/, tpl.name_label)
        }
        for (const name of REQUIRED_TEMPLATES) {
          assert.equal(templates.find(vm => vm.name_label === name).other_config.default_template, 'true', name)
        }

        // Fields xo-server's VM converter reads.
        for (const vm of vms) {
          const what = vm.name_label
          for (const k of ['HVM_boot_params', 'VCPUs_params', 'blocked_operations', 'bios_strings', 'other_config', 'platform', 'current_operations']) {
            assert.ok(isMap(vm[k]), `${what}: ${k}`)
          }
          assert.equal(typeof vm.has_vendor_device, 'boolean', `${what}: has_vendor_device`)
          assert.equal(typeof vm.recommendations, 'string', `${what}: recommendations`)
          assertDatetime(vm.snapshot_time, `${what}: snapshot_time`)
          assert.ok(isInt(vm.memory_static_max), `${what}: memory_static_max`)
          assert.ok(isInt(vm.VCPUs_max), `${what}: VCPUs_max`)
          const metrics = vm.$metrics
          assert.ok(metrics, `${what}: $metrics resolves`)
          assert.equal(metrics.$type, 'VM_metrics')
          assert.ok(vm.guest_metrics === NULL_REF || xapi.getObjectByRef(vm.guest_metrics, undefined) !== undefined)
          for (const ref of [...vm.VBDs, ...vm.VIFs, ...vm.consoles]) assert.ok(xapi.getObjectByRef(ref, undefined), `${what}: ${ref}`)
        }
      })

      it('storage: local ext SR with a plugged PBD, ISO SR, SM records', () => {
        const [host] = objectsOfType(xapi, 'host')
        const srs = objectsOfType(xapi, 'SR')
        const local = srs.find(sr => sr.type === 'ext')
        assert.ok(local, 'an ext SR')
        assert.equal(xapi.pool.default_SR, local.$ref)
        const iso = srs.find(sr => sr.content_type === 'iso')
        assert.ok(iso, 'an ISO SR')
        for (const sr of [local, iso]) {
          assert.ok(sr.PBDs.length >= 1, `${sr.name_label} has a PBD`)
          for (const pbd of sr.$PBDs) {
            assert.equal(pbd.$type, 'PBD')
            assert.equal(pbd.currently_attached, true)
            assert.equal(pbd.host, host.$ref)
            assert.equal(pbd.SR, sr.$ref)
            assert.ok(host.PBDs.includes(pbd.$ref))
          }
          assert.ok(isMap(sr.sm_config))
          assert.ok(isInt(sr.physical_size))
        }
        assert.equal(local.other_config['i18n-key'], 'local-storage')
        const smTypes = objectsOfType(xapi, 'SM').map(sm => sm.type)
        assert.ok(smTypes.includes('ext'), 'SM ext')
        assert.ok(smTypes.includes(iso.type), `SM ${iso.type}`)
      })

      it('network xenbr0 with the management PIF eth0', () => {
        const [host] = objectsOfType(xapi, 'host')
        const net = objectsOfType(xapi, 'network').find(n => n.bridge === 'xenbr0')
        assert.ok(net, 'network xenbr0')
        const pif = net.$PIFs.find(p => p.device === 'eth0')
        assert.ok(pif, 'PIF eth0 on xenbr0')
        assert.equal(pif.management, true)
        assert.equal(pif.host, host.$ref)
        assert.equal(pif.network, net.$ref)
        assert.ok(host.PIFs.includes(pif.$ref))
        assert.equal(pif.$metrics?.$type, 'PIF_metrics')
        assert.ok(isInt(net.MTU))
      })

      it('roles', () => {
        const names = objectsOfType(xapi, 'role').map(r => r.name_label)
        for (const name of XAPI_ROLES) assert.ok(names.includes(name), `role ${name}`)
      })

      it('read helpers: getField, getRecordByUuid, get_all_records_where', async () => {
        const [host] = objectsOfType(xapi, 'host')
        assert.equal(await xapi.getField('host', host.$ref, 'name_label'), host.name_label)
        assert.equal(await xapi.getFieldByUuid('host', host.uuid, 'hostname'), host.hostname)
        const record = await xapi.getRecordByUuid('pool', xapi.pool.uuid)
        assert.equal(record.$ref, xapi.pool.$ref)
        assert.equal(record.master, xapi.pool.master)
        const templates = await xapi.call('VM.get_all_records_where', 'field "is_a_template" = "true"')
        const expected = objectsOfType(xapi, 'VM').filter(vm => vm.is_a_template).map(vm => vm.$ref)
        assert.deepEqual(Object.keys(templates).sort(), expected.sort())
      })

      it('host.get_servertime (xo-server time-skew check, XenCenter at connect)', async () => {
        const [host] = objectsOfType(xapi, 'host')
        const t = await xapi.call('host.get_servertime', host.$ref)
        assertDatetime(t, 'host.get_servertime')
        const ms = t instanceof Date ? t.getTime() : new Date(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6)}`).getTime()
        assert.ok(Math.abs(ms - Date.now()) < 60e3, `servertime ${t} is now`)
      })

      it('int64 encoding matches the transport', () => {
        const [host] = objectsOfType(xapi, 'host')
        const { memory_total } = host.$metrics
        if (transport === 'xml-rpc') {
          // xapi sends int64 as XML-RPC strings.
          assert.equal(typeof memory_total, 'string')
        } else {
          // JSON-RPC numbers; 'auto' must have stayed on JSON-RPC.
          assert.equal(typeof memory_total, 'number')
        }
      })

      it('the event watcher is running', async () => {
        // The first event.from follows the initial fetch after a 200 ms debounce
        // and returns at once with the pool touched by event.inject.
        const ended = () => rpcLog(xapi).filter(c => c.method === 'event.from' && c.end !== undefined)
        await waitFor(() => ended().length >= 1, 5e3, 'a first event.from reply')
        assert.equal(xapi.watchEventsError, undefined)
        const froms = rpcLog(xapi).filter(c => c.method === 'event.from')
        const [sid, classes, token, timeout] = froms[0].args
        assert.equal(sid, xapi.sessionId)
        assert.ok(Array.isArray(classes) && classes.includes('VM'))
        assert.match(token, /^\d{20},\d{20}$/)
        assert.equal(timeout, 60.1)
        for (const c of froms.filter(c => c.end !== undefined)) assert.equal(c.error, undefined, c.error?.message)
      })
    })
  }
})

describe('connect over HTTPS (self-signed certificate, as XO connects)', () => {
  let server
  let port

  before(async () => {
    port = await freePort()
    server = await startServer({ extraArgs: ['--https', `127.0.0.1:${port}`] })
    await waitForPort(port)
  })

  after(async () => {
    await server?.stop()
  })

  for (const transport of ['json-rpc', 'xml-rpc']) {
    it(`${transport}: connect, fetch, barrier with allowUnauthorized`, async () => {
      const xapi = makeClient(`https://127.0.0.1:${port}`, transport)
      try {
        await withTimeout(xapi.connect(), 10e3, 'connect()')
        assert.equal(xapi.status, 'connected')
        await withTimeout(xapi.objectsFetched, 15e3, 'objectsFetched')
        assert.equal(objectsOfType(xapi, 'host').length, 1)
        await withTimeout(xapi.barrier(), 5e3, 'barrier()')
      } finally {
        await closeClient(xapi)
      }
    })
  }

  it('a bare "host:port" URL means https', async () => {
    const xapi = makeClient(`127.0.0.1:${port}`, 'json-rpc', { watchEvents: false })
    await withTimeout(xapi.connect(), 10e3, 'connect()')
    assert.equal(xapi.status, 'connected')
    await xapi.disconnect()
  })

  it('without allowUnauthorized the self-signed certificate is refused', async () => {
    const xapi = makeClient(`https://127.0.0.1:${port}`, 'json-rpc', { allowUnauthorized: false, watchEvents: false })
    await assert.rejects(xapi.connect(), error => {
      assert.match(String(error.code), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/)
      return true
    })
    assert.equal(xapi.status, 'disconnected')
  })
})

describe('the same records over both transports', () => {
  let server
  let json
  let xml

  before(async () => {
    server = await startServer()
    json = makeClient(server.url, 'json-rpc')
    xml = makeClient(server.url, 'xml-rpc')
    await Promise.all([json.connect(), xml.connect()])
    await withTimeout(Promise.all([json.objectsFetched, xml.objectsFetched]), 15e3, 'objectsFetched')
  })

  after(async () => {
    await Promise.all([json, xml].filter(Boolean).map(x => closeClient(x)))
    await server?.stop()
  })

  it('every cached object is equal modulo int64-as-string and datetimes', () => {
    // XML-RPC: ints are strings, datetimes are Dates; everything else equal.
    const normalize = (j, x, path) => {
      if (typeof j === 'number' && Number.isInteger(j) && typeof x === 'string') {
        assert.equal(x, String(j), path)
        return
      }
      if (typeof j === 'string' && x instanceof Date) {
        assert.match(j, DATETIME_RE, path)
        const iso = `${j.slice(0, 4)}-${j.slice(4, 6)}-${j.slice(6, 8)}${j.slice(8)}`
        assert.equal(x.getTime(), new Date(iso).getTime(), path)
        return
      }
      if (j !== null && typeof j === 'object') {
        assert.ok(x !== null && typeof x === 'object', path)
        assert.deepEqual(Object.keys(x).sort(), Object.keys(j).sort(), path)
        for (const k of Object.keys(j)) normalize(j[k], x[k], `${path}.${k}`)
        return
      }
      assert.equal(x, j, path)
    }
    const jAll = json.objects.all
    const xAll = xml.objects.all
    assert.deepEqual(Object.keys(xAll).sort(), Object.keys(jAll).sort())
    for (const id of Object.keys(jAll)) {
      const j = jAll[id]
      const x = xAll[id]
      assert.equal(x.$type, j.$type)
      assert.equal(x.$ref, j.$ref)
      normalize({ ...j }, { ...x }, `${j.$type} ${j.$ref}`)
    }
  })
})
