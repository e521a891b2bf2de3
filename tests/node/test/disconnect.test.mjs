// disconnect(): session.logout wakes the blocked event.from with
// SESSION_INVALID (xapi-reference.md §5.4), nothing is left pending, and the
// client can connect again.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import {
  startServer,
  makeClient,
  closeClient,
  rpcLog,
  pendingCalls,
  rawJsonRpc,
  waitFor,
  withTimeout,
  isRef,
  captureWarnings,
} from './helpers.mjs'

// Both transports side by side, each on its own server.
describe('disconnect', { concurrency: 2 }, () => {
  for (const transport of ['json-rpc', 'xml-rpc']) {
    describe(`disconnect over ${transport}`, { concurrency: 1 }, () => {
      let server
      let xapi
      let oldSession

      before(async () => {
        server = await startServer()
        xapi = makeClient(server.url, transport)
        await xapi.connect()
        await withTimeout(xapi.objectsFetched, 15e3, 'objectsFetched')
      })

      after(async () => {
        if (xapi !== undefined) await closeClient(xapi)
        await server?.stop()
      })

      it('disconnect() while event.from is blocked', async () => {
        // Wait until the watcher is long-polling.
        const blocked = await waitFor(
          () => pendingCalls(xapi, 'event.from').find(c => Date.now() - c.start > 300),
          5e3,
          'an event.from blocked for 300 ms'
        )
        oldSession = xapi.sessionId

        let emitted = false
        xapi.once('disconnected', () => {
          emitted = true
        })
        const start = Date.now()
        await xapi.disconnect()
        assert.equal(xapi.status, 'disconnected')
        assert.ok(emitted, "'disconnected' event")
        await withTimeout(xapi.disconnected, 1e3, 'xapi.disconnected')

        // session.logout was sent with the session...
        await waitFor(() => rpcLog(xapi).some(c => c.method === 'session.logout' && c.end !== undefined), 3e3, 'session.logout reply')
        const logout = rpcLog(xapi).find(c => c.method === 'session.logout')
        assert.deepEqual(logout.args, [oldSession])
        assert.equal(logout.error, undefined)
        assert.equal(logout.result, '')

        // ...and it woke the blocked event.from with SESSION_INVALID [session].
        await waitFor(() => blocked.end !== undefined, 3e3, 'the blocked event.from to end')
        assert.ok(blocked.end - start < 2e3, `event.from ended ${blocked.end - start} ms after disconnect()`)
        assert.equal(blocked.error?.code, 'SESSION_INVALID', blocked.error?.message)
        assert.deepEqual(blocked.error.params, [oldSession])
      })

      it('nothing is left pending and no new calls are made', async () => {
        const n = rpcLog(xapi).length
        await new Promise(resolve => setTimeout(resolve, 500))
        assert.deepEqual(pendingCalls(xapi).map(c => c.method), [])
        assert.deepEqual(rpcLog(xapi).slice(n).map(c => c.method), [])
        assert.equal(xapi.watchEventsError, undefined)
      })

      it('the old session is invalid', async () => {
        const r = await rawJsonRpc(server.url, { id: 0, jsonrpc: '2.0', method: 'pool.get_all', params: [oldSession] })
        assert.deepEqual(r.json.error, { code: 1, message: 'SESSION_INVALID', data: [oldSession] })
      })

      it('connect() again: new session, objects refetched, events flow', async () => {
        const n = rpcLog(xapi).length
        await withTimeout(xapi.connect(), 10e3, 'reconnect')
        assert.equal(xapi.status, 'connected')
        assert.ok(isRef(xapi.sessionId))
        assert.notEqual(xapi.sessionId, oldSession)
        const methods = rpcLog(xapi).slice(n).map(c => c.method)
        assert.equal(methods[0], 'session.login_with_password')
        // The watcher resumes: event.inject then a refetch of every type.
        await waitFor(() => rpcLog(xapi).slice(n).some(c => c.method === 'event.inject' && c.end !== undefined), 5e3, 'event.inject')
        await withTimeout(xapi.objectsFetched, 15e3, 'objectsFetched after reconnect')
        const key = `after-reconnect-${transport}`
        await xapi.call('pool.add_to_other_config', xapi.pool.$ref, key, 'x')
        const pool = await withTimeout(xapi.barrier(xapi.pool.$ref), 5e3, 'barrier after reconnect')
        assert.equal(pool.other_config[key], 'x')
        await xapi.call('pool.remove_from_other_config', xapi.pool.$ref, key)
      })

      it('a final disconnect leaves nothing pending', async () => {
        await closeClient(xapi)
        assert.equal(xapi.status, 'disconnected')
        assert.deepEqual(pendingCalls(xapi).map(c => c.method), [])
      })
    })
  }
})

describe('a session opened elsewhere (auth.sessionId)', () => {
  let server

  before(async () => {
    server = await startServer()
  })

  after(async () => {
    await server?.stop()
  })

  it('a JSON-RPC session drives an XML-RPC client and vice versa', async () => {
    for (const [first, second] of [['json-rpc', 'xml-rpc'], ['xml-rpc', 'json-rpc']]) {
      const a = makeClient(server.url, first, { watchEvents: false })
      await a.connect()
      const b = makeClient(server.url, second, { auth: { sessionId: a.sessionId } })
      try {
        await withTimeout(b.connect(), 10e3, 'connect with a session id')
        assert.equal(b.status, 'connected')
        assert.equal(b.sessionId, a.sessionId)
        await withTimeout(b.objectsFetched, 15e3, 'objectsFetched')
        assert.equal(b.pool.$ref, a.pool.$ref)
        assert.equal(rpcLog(b).some(c => c.method === 'session.login_with_password'), false)
      } finally {
        // b logs the shared session out; a's session goes with it.
        await closeClient(b)
        await a.disconnect()
      }
    }
  })
})

describe('server shutdown with a connected client', () => {
  it('SIGTERM during a blocked event.from: the server exits 0 promptly', async () => {
    const server = await startServer()
    const xapi = makeClient(server.url, 'json-rpc')
    let warnings
    try {
      await xapi.connect()
      await withTimeout(xapi.objectsFetched, 15e3, 'objectsFetched')
      await waitFor(
        () => pendingCalls(xapi, 'event.from').find(c => Date.now() - c.start > 300),
        5e3,
        'an event.from blocked for 300 ms'
      )
      // The client reports the dropped long-poll through console.warn.
      warnings = captureWarnings()
      const start = Date.now()
      const exit = await server.stop()
      assert.deepEqual(exit, { code: 0, signal: null })
      assert.ok(Date.now() - start < 5e3, `stopped in ${Date.now() - start} ms`)
    } finally {
      await xapi.disconnect()
      await server.stop()
      // Restore console.warn once the client has handled the dropped call.
      await waitFor(() => pendingCalls(xapi).length === 0, 3e3, 'no pending call').catch(() => {})
      await new Promise(resolve => setTimeout(resolve, 100))
      warnings?.restore()
    }
  })
})
