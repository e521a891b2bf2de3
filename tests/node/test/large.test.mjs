// Replies with hundreds of records are sent chunked while they are encoded;
// the npm client's initial fetch and plain calls read them over both transports.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import { USER, PASSWORD, startServer, makeClient, closeClient, objectsOfType, withTimeout, xmlCall } from './helpers.mjs'

const N = 300

describe('large replies', { concurrency: 1 }, () => {
  let server
  const refs = []

  before(async () => {
    server = await startServer()
    const setup = makeClient(server.url, 'json-rpc')
    await withTimeout(setup.connect(), 10e3, 'connect()')
    const [tpl] = await setup.call('VM.get_by_name_label', 'Debian Bookworm 12')
    for (let i = 0; i < N; i++) refs.push(await setup.call('VM.clone', tpl, `bulk-${i}`))
    await closeClient(setup)
  })

  after(async () => {
    await server?.stop()
  })

  for (const transport of ['json-rpc', 'xml-rpc']) {
    it(`${transport}: the initial fetch holds every VM, and get_all_records reads whole`, async () => {
      const xapi = makeClient(server.url, transport)
      try {
        await withTimeout(xapi.connect(), 10e3, 'connect()')
        await withTimeout(xapi.objectsFetched, 15e3, 'objectsFetched')
        const cached = new Set(objectsOfType(xapi, 'VM').map(vm => vm.$ref))
        for (const ref of refs) assert.ok(cached.has(ref), `${ref} in the cache`)
        const all = await xapi.call('VM.get_all_records')
        assert.equal(Object.keys(all).length, cached.size)
        assert.equal(all[refs[N - 1]].name_label, `bulk-${N - 1}`)
      } finally {
        await closeClient(xapi)
      }
    })
  }

  it('the reply is chunked, without Content-Length', async () => {
    const post = body =>
      fetch(new URL('/', server.url), { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body })
    const login = await (await post(xmlCall('session.login_with_password', [USER, PASSWORD]))).text()
    const [, session] = login.match(/<name>Value<\/name><value>(OpaqueRef:[^<]+)<\/value>/)
    const res = await post(xmlCall('VM.get_all', [session]))
    assert.equal(res.headers.get('transfer-encoding'), 'chunked')
    assert.equal(res.headers.get('content-length'), null)
    const body = await res.text()
    for (const ref of refs) assert.ok(body.includes(`<value>${ref}</value>`), ref)
  })
})
