// Failing calls reject with the client's XapiError carrying xapi's code and
// parameters, on both transports (xapi-reference.md §1.9, §12).

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import { startServer, makeClient, closeClient, objectsOfType, withTimeout } from './helpers.mjs'

const MISSING_REF = 'OpaqueRef:00000000-0000-4000-8000-000000000000'
const MISSING_UUID = '00000000-0000-4000-8000-000000000000'

// assert.rejects predicate: an XapiError with this code and params.
const xapiError = (code, params, method) => error => {
  assert.equal(error.code, code, `code (${error.message})`)
  assert.deepEqual(error.params, params)
  assert.equal(error.message, `${code}(${params.join(', ')})`)
  if (method !== undefined) assert.equal(error.call?.method, method)
  return true
}

// One server per transport, side by side.
describe('errors', { concurrency: 3 }, () => {
  for (const transport of ['json-rpc', 'xml-rpc']) {
    describe(`errors over ${transport}`, { concurrency: 1 }, () => {
      let server
      let xapi

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

      it('HANDLE_INVALID [class, ref] for a missing ref', async () => {
        await assert.rejects(
          xapi.call('VM.get_record', MISSING_REF),
          xapiError('HANDLE_INVALID', ['VM', MISSING_REF], 'VM.get_record')
        )
        await assert.rejects(xapi.getRecord('SR', MISSING_REF), xapiError('HANDLE_INVALID', ['SR', MISSING_REF]))
        await assert.rejects(
          xapi.call('network.destroy', MISSING_REF),
          xapiError('HANDLE_INVALID', ['network', MISSING_REF], 'network.destroy')
        )
        await assert.rejects(xapi.call('VM.get_record', 'OpaqueRef:NULL'), xapiError('HANDLE_INVALID', ['VM', 'OpaqueRef:NULL']))
      })

      it('HANDLE_INVALID for a ref of another class', async () => {
        const poolRef = xapi.pool.$ref
        await assert.rejects(xapi.call('VM.get_record', poolRef), xapiError('HANDLE_INVALID', ['VM', poolRef]))
        await assert.rejects(
          xapi.call('host.get_name_label', poolRef),
          xapiError('HANDLE_INVALID', ['host', poolRef])
        )
      })

      it('UUID_INVALID [class, uuid]', async () => {
        await assert.rejects(
          xapi.call('VM.get_by_uuid', MISSING_UUID),
          xapiError('UUID_INVALID', ['VM', MISSING_UUID], 'VM.get_by_uuid')
        )
        await assert.rejects(xapi.getRecordByUuid('network', MISSING_UUID), xapiError('UUID_INVALID', ['network', MISSING_UUID]))
      })

      it('MESSAGE_METHOD_UNKNOWN [method]', async () => {
        await assert.rejects(
          xapi.call('VM.no_such_message', MISSING_REF),
          xapiError('MESSAGE_METHOD_UNKNOWN', ['VM.no_such_message'])
        )
        await assert.rejects(
          xapi.call('no_such_class.get_all'),
          xapiError('MESSAGE_METHOD_UNKNOWN', ['no_such_class.get_all'])
        )
      })

      it('MESSAGE_PARAMETER_COUNT_MISMATCH [method, expected, received] (session excluded)', async () => {
        await assert.rejects(
          xapi.call('VM.get_record'),
          xapiError('MESSAGE_PARAMETER_COUNT_MISMATCH', ['VM.get_record', '1', '0'])
        )
        await assert.rejects(
          xapi.call('pool.add_to_other_config', xapi.pool.$ref, 'k'),
          xapiError('MESSAGE_PARAMETER_COUNT_MISMATCH', ['pool.add_to_other_config', '3', '2'])
        )
      })

      it('MAP_DUPLICATE_KEY [class, field, ref, key]', async () => {
        const poolRef = xapi.pool.$ref
        const key = `dup-${transport}`
        await xapi.call('pool.add_to_other_config', poolRef, key, 'a')
        try {
          await assert.rejects(
            xapi.call('pool.add_to_other_config', poolRef, key, 'b'),
            xapiError('MAP_DUPLICATE_KEY', ['pool', 'other_config', poolRef, key])
          )
          assert.equal(await xapi.call('pool.get_other_config', poolRef).then(oc => oc[key]), 'a')
        } finally {
          await xapi.call('pool.remove_from_other_config', poolRef, key)
        }
        // Removing a missing key is not an error (XO's setFieldEntry relies on it).
        await xapi.call('pool.remove_from_other_config', poolRef, key)
      })

      it('INVALID_VALUE [expr, reason] for a bad get_all_records_where expression', async () => {
        const expr = 'field "name__label" = '
        await assert.rejects(xapi.call('VM.get_all_records_where', expr), error => {
          assert.equal(error.code, 'INVALID_VALUE')
          assert.equal(error.params.length, 2)
          assert.equal(error.params[0], expr)
          return true
        })
      })

      it('event.from with a bad token: EVENT_FROM_TOKEN_PARSE_FAILURE [token]', async () => {
        await assert.rejects(
          xapi.call('event.from', ['pool'], 'not-a-token', 0.5),
          xapiError('EVENT_FROM_TOKEN_PARSE_FAILURE', ['not-a-token'])
        )
      })

      it('event.inject with a ref of another class: HANDLE_INVALID [class, ref]', async () => {
        const poolRef = xapi.pool.$ref
        await assert.rejects(xapi.call('event.inject', 'VM', poolRef), xapiError('HANDLE_INVALID', ['VM', poolRef]))
        await assert.rejects(xapi.call('event.inject', 'pool', MISSING_REF), xapiError('HANDLE_INVALID', ['pool', MISSING_REF]))
        const [vm] = objectsOfType(xapi, 'VM')
        assert.match(await xapi.call('event.inject', 'VM', vm.$ref), /^\d{20},\d{20}$/)
      })

      it('event.inject compares the class with the table name as is', async () => {
        const [vm] = objectsOfType(xapi, 'VM')
        await assert.rejects(xapi.call('event.inject', 'vm', vm.$ref), xapiError('HANDLE_INVALID', ['vm', vm.$ref]))
      })

      it('a wrong password: connect() rejects with SESSION_AUTHENTICATION_FAILED [user, message]', async () => {
        const bad = makeClient(server.url, transport, { auth: { user: 'root', password: 'wrong' }, watchEvents: false })
        await assert.rejects(bad.connect(), error => {
          assert.equal(error.code, 'SESSION_AUTHENTICATION_FAILED')
          assert.equal(error.params.length, 2)
          assert.equal(error.params[0], 'root')
          assert.equal(typeof error.params[1], 'string')
          assert.equal(error.call.method, 'session.login_with_password')
          return true
        })
        assert.equal(bad.status, 'disconnected')
      })

      it('an unknown session: connect() rejects with SESSION_INVALID [ref]', async () => {
        const bad = makeClient(server.url, transport, { auth: { sessionId: MISSING_REF }, watchEvents: false })
        await assert.rejects(bad.connect(), xapiError('SESSION_INVALID', [MISSING_REF], 'pool.get_all_records'))
        assert.equal(bad.status, 'disconnected')
      })

      it('the connection is still usable after errors', async () => {
        assert.equal(xapi.status, 'connected')
        const pools = await xapi.call('pool.get_all')
        assert.deepEqual(pools, [xapi.pool.$ref])
        assert.equal(xapi.watchEventsError, undefined)
      })
    })
  }
})
