// What the client relies on at the wire level: system.listMethods, JSON-RPC
// v2 (and v1) reply shapes, XML-RPC envelopes and content types, and the
// event.from result (xapi-reference.md §1.1, §1.3, §1.6, §1.10, §5;
// clients.md §1.2, §4.4).

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import {
  startServer,
  makeClient,
  closeClient,
  rawJsonRpc,
  rawXmlRpc,
  rawPost,
  withTimeout,
  isRef,
} from './helpers.mjs'

const GET_ALL_RECORDS_CLASSES = [
  'Bond', 'Certificate', 'Feature', 'PBD', 'PIF', 'PIF_metrics', 'SM', 'SR', 'VBD', 'VBD_metrics',
  'VDI', 'VIF', 'VLAN', 'VM', 'VM_appliance', 'VM_guest_metrics', 'VM_metrics', 'VTPM', 'blob',
  'console', 'host', 'host_cpu', 'host_crashdump', 'host_metrics', 'message', 'network', 'pool',
  'pool_update', 'role', 'secret', 'subject', 'task', 'tunnel',
]

const MISSING_REF = 'OpaqueRef:00000000-0000-4000-8000-000000000000'

// XML-RPC replies: compact (the client's parser keeps whitespace text nodes),
// optional prolog with nothing after it.
const XML_PROLOG = '(?:<\\?xml version="1\\.0"\\?>)?'
const xmlSuccess = valueRe => new RegExp(
  `^${XML_PROLOG}<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>${valueRe}</member></struct></value></param></params></methodResponse>$`
)
const xmlFailure = (code, params) => new RegExp(
  `^${XML_PROLOG}<methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data>${[code, ...params]
    .map(p => `<value>${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}</value>`)
    .join('')}</data></array></value></member></struct></value></param></params></methodResponse>$`
)

describe('wire shapes', () => {
  let server
  let sid

  before(async () => {
    server = await startServer()
    const r = await rawJsonRpc(server.url, {
      id: 0,
      jsonrpc: '2.0',
      method: 'session.login_with_password',
      params: ['root', 'test-password'],
    })
    sid = r.json.result
  })

  after(async () => {
    if (sid !== undefined) {
      await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'session.logout', params: [sid] })
    }
    await server?.stop()
  })

  describe('system.listMethods', () => {
    for (const transport of ['json-rpc', 'xml-rpc']) {
      it(`xapi.call('system.listMethods') over ${transport}`, async () => {
        const xapi = makeClient(server.url, transport, { watchEvents: false })
        await xapi.connect()
        try {
          // call() passes the session as first argument; xapi ignores it.
          const methods = await xapi.call('system.listMethods')
          assert.ok(Array.isArray(methods))
          assert.ok(methods.every(m => typeof m === 'string'))
          assert.equal(new Set(methods).size, methods.length, 'no duplicates')
          for (const m of methods) assert.match(m, /^[A-Za-z][A-Za-z0-9_]*\.[A-Za-z0-9_]+$/, 'Class.message, no Async.')
          for (const cls of GET_ALL_RECORDS_CLASSES) {
            assert.ok(methods.includes(`${cls}.get_all_records`), `${cls}.get_all_records`)
          }
          for (const m of [
            'session.login_with_password', 'session.logout', 'event.from', 'event.inject', 'event.register',
            'event.next', 'pool.add_to_other_config', 'pool.remove_from_other_config', 'VM.get_all_records_where',
            'VM.get_by_uuid', 'VM.set_name_label', 'network.create', 'network.destroy', 'task.create',
            'task.destroy', 'host.get_servertime',
          ]) {
            assert.ok(methods.includes(m), m)
          }
          // Classes without get_all_records in xapi must not become watched types.
          for (const cls of ['session', 'auth', 'event', 'user', 'data_source']) {
            assert.ok(!methods.includes(`${cls}.get_all_records`), `no ${cls}.get_all_records`)
          }
        } finally {
          await closeClient(xapi)
        }
      })
    }

    it('without a session, JSON-RPC v2: a plain result array', async () => {
      const r = await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'system.listMethods', params: [] })
      assert.equal(r.contentType, 'application/json')
      assert.deepEqual(Object.keys(r.json).sort(), ['id', 'jsonrpc', 'result'])
      assert.ok(Array.isArray(r.json.result) && r.json.result.includes('VM.get_all_records'))
    })

    it('without a session, XML-RPC: the bare array, no Status envelope (as xapi)', async () => {
      const r = await rawXmlRpc(server.url, 'system.listMethods', [])
      assert.equal(r.status, 200)
      assert.equal(r.contentType, 'text/xml')
      assert.match(r.text, new RegExp(`^${XML_PROLOG}<methodResponse><params><param><value><array><data><value>`))
      assert.ok(r.text.includes('<value>VM.get_all_records</value>'))
      assert.doesNotMatch(r.text, /<name>Status<\/name>/)
    })
  })

  describe('JSON-RPC as the client speaks it (v2)', () => {
    it('success: exactly {jsonrpc, result, id}, no error member, Content-Type application/json', async () => {
      const r = await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'pool.get_all', params: [sid] })
      assert.equal(r.status, 200)
      assert.equal(r.contentType, 'application/json')
      assert.deepEqual(Object.keys(r.json).sort(), ['id', 'jsonrpc', 'result'])
      assert.equal(r.json.jsonrpc, '2.0')
      assert.equal(r.json.id, 0)
      assert.equal(r.json.result.length, 1)
      assert.ok(isRef(r.json.result[0]))
    })

    it('failure: {jsonrpc, error: {code: 1, message: CODE, data: [strings]}, id}', async () => {
      const r = await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'VM.get_record', params: [sid, MISSING_REF] })
      assert.equal(r.status, 200)
      assert.equal(r.contentType, 'application/json')
      assert.deepEqual(r.json, {
        jsonrpc: '2.0',
        error: { code: 1, message: 'HANDLE_INVALID', data: ['VM', MISSING_REF] },
        id: 0,
      })
    })

    it('void results are ""', async () => {
      const poolRef = (await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'pool.get_all', params: [sid] })).json.result[0]
      const r = await rawJsonRpc(server.url, {
        id: 0,
        jsonrpc: '2.0',
        method: 'pool.remove_from_other_config',
        params: [sid, poolRef, 'no-such-key'],
      })
      assert.deepEqual(r.json, { jsonrpc: '2.0', result: '', id: 0 })
    })

    it('ids are echoed unchanged (int and string)', async () => {
      for (const id of [7, 'abc']) {
        const r = await rawJsonRpc(server.url, { id, jsonrpc: '2.0', method: 'pool.get_all', params: [sid] })
        assert.equal(r.json.id, id)
        const e = await rawJsonRpc(server.url, { id, jsonrpc: '2.0', method: 'VM.get_record', params: [sid, MISSING_REF] })
        assert.equal(e.json.id, id)
      }
    })

    it('int64 are JSON numbers, datetimes compact strings', async () => {
      const r = await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'host_metrics.get_all_records', params: [sid] })
      const [metrics] = Object.values(r.json.result)
      assert.equal(typeof metrics.memory_total, 'number')
      assert.match(metrics.last_updated, /^\d{8}T\d\d:\d\d:\d\dZ$/)
    })
  })

  describe('JSON-RPC v1 (XenCenter starts with it)', () => {
    it('success: {result, error: null, id}', async () => {
      const r = await rawJsonRpc(server.url, { id: 1, method: 'pool.get_all', params: [sid] })
      assert.equal(r.contentType, 'application/json')
      assert.deepEqual(Object.keys(r.json).sort(), ['error', 'id', 'result'])
      assert.equal(r.json.error, null)
      assert.equal(r.json.id, 1)
    })

    it('failure: {result: null, error: [CODE, params...], id}', async () => {
      const r = await rawJsonRpc(server.url, { id: 2, method: 'VM.get_record', params: [sid, MISSING_REF] })
      assert.deepEqual(r.json, { result: null, error: ['HANDLE_INVALID', 'VM', MISSING_REF], id: 2 })
    })
  })

  describe('XML-RPC as the client speaks it', () => {
    it('success envelope, compact, Content-Type text/xml, on any POST path', async () => {
      for (const path of ['/xmlrpc', '/', '/RPC2', '/some/other/path']) {
        const r = await rawXmlRpc(server.url, 'session.login_with_password', ['root', 'test-password'], path)
        assert.equal(r.status, 200, path)
        assert.equal(r.contentType, 'text/xml', path)
        assert.match(r.text, xmlSuccess('<value>OpaqueRef:[0-9a-f-]{36}</value>'), path)
        const session = /<value>(OpaqueRef:[0-9a-f-]{36})<\/value>/.exec(r.text)[1]
        await rawXmlRpc(server.url, 'session.logout', [session])
      }
    })

    it('failure envelope: Status Failure + ErrorDescription [CODE, params...]', async () => {
      const r = await rawXmlRpc(server.url, 'VM.get_record', [sid, MISSING_REF], '/xmlrpc')
      assert.equal(r.contentType, 'text/xml')
      assert.match(r.text, xmlFailure('HANDLE_INVALID', ['VM', MISSING_REF]))
    })

    it('int64 are untyped <value>s (strings), no whitespace between elements', async () => {
      const r = await rawXmlRpc(server.url, 'host_metrics.get_all_records', [sid], '/xmlrpc')
      assert.match(r.text, /<member><name>memory_total<\/name><value>\d+<\/value><\/member>/)
      assert.match(r.text, /<member><name>last_updated<\/name><value><dateTime\.iso8601>\d{8}T\d\d:\d\d:\d\dZ<\/dateTime\.iso8601><\/value><\/member>/)
      assert.match(r.text, /<member><name>live<\/name><value><boolean>1<\/boolean><\/value><\/member>/)
      assert.doesNotMatch(r.text, />\s+</)
    })
  })

  describe('event.from results', () => {
    let poolRef

    before(async () => {
      poolRef = (await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'pool.get_all', params: [sid] })).json.result[0]
    })

    const call = async (method, ...params) => {
      const r = await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method, params: [sid, ...params] })
      if (r.json.error !== undefined) {
        const e = new Error(`${r.json.error.message}(${r.json.error.data})`)
        e.code = r.json.error.message
        throw e
      }
      return r.json.result
    }

    it('token "" returns every object of the classes as add, with valid_ref_counts and a token', async () => {
      const res = await call('event.from', ['pool', 'VM'], '', 0)
      assert.deepEqual(Object.keys(res).sort(), ['events', 'token', 'valid_ref_counts'])
      assert.match(res.token, /^\d{20},\d{20}$/)
      const vms = await call('VM.get_all')
      assert.equal(res.events.length, 1 + vms.length)
      for (const ev of res.events) {
        assert.deepEqual(Object.keys(ev).sort(), ['class', 'id', 'operation', 'ref', 'snapshot', 'timestamp'])
        assert.ok(['pool', 'vm'].includes(ev.class), `lower-case class ${ev.class}`)
        assert.equal(ev.operation, 'add')
        assert.equal(typeof ev.id, 'string')
        assert.equal(ev.timestamp, '0.0')
        assert.ok(isRef(ev.ref))
        assert.equal(typeof ev.snapshot.uuid, 'string')
      }
      const counts = res.valid_ref_counts
      for (const [k, v] of Object.entries(counts)) {
        assert.equal(k, k.toLowerCase(), `valid_ref_counts key ${k}`)
        assert.ok(Number.isInteger(v), `valid_ref_counts.${k} is an int`)
      }
      assert.equal(counts.pool, 1)
      assert.equal(counts.vm, vms.length)
      assert.equal(typeof counts.task, 'number')
    })

    it('a map edit yields exactly one mod with the new snapshot', async () => {
      const { token } = await call('event.from', ['pool'], '', 0)
      await call('pool.add_to_other_config', poolRef, 'wire-test', 'x')
      const res = await call('event.from', ['pool'], token, 5)
      assert.equal(res.events.length, 1)
      const [ev] = res.events
      assert.equal(ev.class, 'pool')
      assert.equal(ev.operation, 'mod')
      assert.equal(ev.ref, poolRef)
      assert.equal(ev.snapshot.other_config['wire-test'], 'x')
      assert.ok(res.token > token, 'tokens compare as strings')
      await call('pool.remove_from_other_config', poolRef, 'wire-test')
    })

    it('add with snapshot, del without; created-and-deleted in one window is not reported', async () => {
      let { token } = await call('event.from', ['network'], '', 0)
      const net = await call('network.create', { name_label: 'wire', other_config: {} })
      let res = await call('event.from', ['network'], token, 5)
      assert.deepEqual(res.events.map(e => [e.class, e.operation, e.ref]), [['network', 'add', net]])
      assert.equal(res.events[0].snapshot.name_label, 'wire')
      token = res.token
      await call('network.destroy', net)
      res = await call('event.from', ['network'], token, 5)
      assert.deepEqual(res.events.map(e => [e.class, e.operation, e.ref]), [['network', 'del', net]])
      assert.equal('snapshot' in res.events[0], false)
      token = res.token
      const tmp = await call('network.create', { name_label: 'ephemeral', other_config: {} })
      await call('network.destroy', tmp)
      res = await call('event.from', ['network'], token, 0.3)
      assert.deepEqual(res.events, [])
    })

    it('class names are case-insensitive; "*" and "class/ref" subscriptions', async () => {
      const { token } = await call('event.from', ['*'], '', 0)
      await call('pool.add_to_other_config', poolRef, 'wire-case', 'x')
      for (const classes of [['POOL'], ['Pool'], ['*'], [`pool/${poolRef}`]]) {
        const res = await call('event.from', classes, token, 5)
        assert.deepEqual(res.events.map(e => [e.class, e.operation]), [['pool', 'mod']], JSON.stringify(classes))
      }
      const res = await call('event.from', [`pool/${MISSING_REF}`], token, 0.3)
      assert.deepEqual(res.events, [])
      await call('pool.remove_from_other_config', poolRef, 'wire-case')
    })

    it('event.from blocks until a change, then returns promptly', async () => {
      const { token } = await call('event.from', ['pool'], '', 0)
      const start = Date.now()
      const pending = call('event.from', ['pool'], token, 10)
      await new Promise(resolve => setTimeout(resolve, 300))
      await call('pool.add_to_other_config', poolRef, 'wire-block', 'x')
      const res = await withTimeout(pending, 5e3, 'event.from wake-up')
      const elapsed = Date.now() - start
      assert.ok(elapsed >= 250, `returned after ${elapsed} ms, before the change`)
      assert.ok(elapsed < 2000, `returned after ${elapsed} ms`)
      assert.deepEqual(res.events.map(e => e.operation), ['mod'])
      await call('pool.remove_from_other_config', poolRef, 'wire-block')
    })

    it('event.from with no change waits for the timeout and returns no events', async () => {
      const { token } = await call('event.from', ['pool'], '', 0)
      const start = Date.now()
      const res = await call('event.from', ['pool'], token, 0.6)
      const elapsed = Date.now() - start
      assert.ok(elapsed >= 550, `returned after ${elapsed} ms`)
      assert.deepEqual(res.events, [])
      assert.match(res.token, /^\d{20},\d{20}$/)
    })

    it('message events come from the message store: id "0", second token part advances', async () => {
      const { token } = await call('event.from', ['message'], '', 0)
      const [hostRef] = await call('host.get_all')
      const hostUuid = await call('host.get_uuid', hostRef)
      const msg = await call('message.create', 'WIRE_TEST', 2, 'Host', hostUuid, 'wire')
      const res = await call('event.from', ['message'], token, 5)
      assert.deepEqual(res.events.map(e => [e.class, e.operation, e.ref, e.id]), [['message', 'add', msg, '0']])
      assert.equal(res.events[0].snapshot.name, 'WIRE_TEST')
      const msgGen = t => BigInt(t.split(',')[1])
      assert.ok(msgGen(res.token) > msgGen(token), `message generation advanced: ${token} -> ${res.token}`)
      await call('message.destroy', msg)
    })

    it('over XML-RPC, valid_ref_counts are <i4> and event.from takes a <double> timeout', async () => {
      const r = await rawXmlRpc(server.url, 'event.from', [sid, ['pool'], '', { double: 0.1 }], '/xmlrpc')
      assert.equal(r.contentType, 'text/xml')
      assert.match(r.text, xmlSuccess('<value><struct>.*</struct></value>'))
      assert.match(r.text, /<member><name>task<\/name><value><i4>\d+<\/i4><\/value><\/member>/)
      assert.match(r.text, /<member><name>pool<\/name><value><i4>1<\/i4><\/value><\/member>/)
      assert.match(r.text, /<member><name>timestamp<\/name><value>0\.0<\/value><\/member>/)
    })
  })

  describe('HTTP details', () => {
    it('JSON-RPC and XML-RPC replies carry the CORS headers', async () => {
      for (const [path, body, type] of [
        ['/jsonrpc', JSON.stringify({ id: 0, jsonrpc: '2.0', method: 'pool.get_all', params: [sid] }), 'application/json'],
        ['/', `<?xml version="1.0"?><methodCall><methodName>pool.get_all</methodName><params><param><value>${sid}</value></param></params></methodCall>`, 'text/xml'],
      ]) {
        const res = await fetch(new URL(path, server.url), { method: 'POST', headers: { 'Content-Type': type }, body })
        await res.text()
        assert.equal(res.headers.get('access-control-allow-origin'), '*', path)
        assert.match(res.headers.get('access-control-allow-headers') ?? '', /X-Requested-With/, path)
      }
    })

    it('a session from XML-RPC works over JSON-RPC and vice versa', async () => {
      const x = await rawXmlRpc(server.url, 'session.login_with_password', ['root', 'test-password'])
      const xmlSession = /<value>(OpaqueRef:[0-9a-f-]{36})<\/value>/.exec(x.text)[1]
      const j = await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'pool.get_all', params: [xmlSession] })
      assert.equal(j.json.result.length, 1)
      const r = await rawPost(
        server.url,
        '/',
        `<?xml version="1.0"?><methodCall><methodName>pool.get_all</methodName><params><param><value>${sid}</value></param></params></methodCall>`,
        'text/xml'
      )
      assert.match(r.text, xmlSuccess('<value><array><data><value>OpaqueRef:[0-9a-f-]{36}</value></data></array></value>'))
      await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'session.logout', params: [xmlSession] })
    })
  })
})
